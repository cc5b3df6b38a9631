"""Speed of TD3 expert training: K contexts batched in one process vs one context at a time.

One "context-step" = one env step of one context + one TD3 update of that context's agent
(HyperZero's settings: 2 x 256 actor / twin critics, batch 256, policy delay 2; --hidden / --batch
change width and minibatch, e.g. the cheetah_run_hyperzero_small preset's 64 / 128). Batched: a
K-copy contextual env and a K-member ``TD3Ensemble`` (one ``baddbmm`` per layer). Sequential:
the same work done by a 1-context trainer K times. Prints context-steps per second of both and
the speed-up.

    python benchmarks/bench_td3.py [--env ContextualCheetahRun] [--contexts 20] [--steps 200]
                                   [--threads 1] [--device cpu] [--hidden 256] [--batch 256]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from algorithms.td3 import TD3Config  # noqa: E402
from hyperzero.experts import ExpertTraining  # noqa: E402


def context_steps_per_second(env_name: str, contexts: np.ndarray, steps: int, cfg: TD3Config, device: str,
                             warmup: int = 20) -> float:
    run = ExpertTraining(env_name, contexts, seed=0, cfg=cfg, seed_frames=cfg.batch_size, device=device)
    for _ in range(cfg.batch_size + warmup):  # fill the buffer past the first batch, then warm up
        run.step()
    if device != "cpu":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        run.step()
    if device != "cpu":
        torch.cuda.synchronize()
    return len(contexts) * steps / (time.perf_counter() - t0)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="ContextualCheetahRun")
    p.add_argument("--contexts", type=int, default=20)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--hidden", type=int, default=256, help="actor / critic width (2 layers)")
    p.add_argument("--batch", type=int, default=256, help="TD3 minibatch")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    import environments  # noqa: F401  (registers the contextual envs)

    cfg = TD3Config(hidden=args.hidden, batch_size=args.batch, num_expl_steps=0, buffer_size=10_000)
    margins = np.linspace(0.5, 10.0, args.contexts)
    contexts = np.stack([margins, np.full(args.contexts, np.nan)], 1)
    from environments.contextual.models import DEFAULT_LENGTH
    from environments.registry import ENVS

    contexts[:, 1] = DEFAULT_LENGTH[ENVS.get(args.env).domain]
    batched = context_steps_per_second(args.env, contexts, args.steps, cfg, args.device)
    single = context_steps_per_second(args.env, contexts[:1], args.steps, cfg, args.device)
    print(f"{args.env}, TD3 2x{cfg.hidden}, batch {cfg.batch_size}, {args.threads} thread(s), device {args.device}")
    print(f"  batched over {args.contexts} contexts: {batched:8.1f} context-steps/s (env step + update each)")
    print(f"  one context at a time:      {single:8.1f} context-steps/s")
    print(f"  speed-up: {batched / single:.2f}x")


if __name__ == "__main__":
    main()
