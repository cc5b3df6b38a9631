"""End-to-end training speed (frames/s, peak RSS) at reference hyperparameters, and env
stepping alone, for the navigation env-types.

    python benchmarks/bench_training.py [--env-types gridworld_varibad pointrobot_varibad] [--frames 100000]

Evaluation/plots/checkpoints are pushed out of the timed window (their intervals are set
beyond the run) so the figure is the training loop itself; precollect is kept.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from config.loader import resolve  # noqa: E402
from environments import make_env  # noqa: E402
from environments.bamdp import BAMDPWrapper  # noqa: E402


def time_training(env_type: str, frames: int, extra: dict) -> dict:
    """Frames/s of training (all seeds' frames with ``num_seeds``), evaluation and checkpoints
    pushed out of the timed window."""
    from trainers import build_trainer

    far = str(10**9)
    over = {"num_frames": [str(frames)], "eval_interval": [far], "vis_interval": [far], "log_interval": [far],
            "save_interval": [far], "progress_bar": ["false"], **{k: [str(v)] for k, v in extra.items()}}
    cfg = resolve(env_type, over)
    with tempfile.TemporaryDirectory() as d:
        trainer = build_trainer(cfg, d)
        learners = getattr(trainer, "members", [trainer])  # a --num_seeds run: its member runs
        for learner in learners:
            learner._evaluate_and_report = lambda vis=True: None  # not part of the timed loop
            learner.save = lambda: None
        t0 = time.perf_counter()
        trainer.train()
        dt = time.perf_counter() - t0
    frames = sum(learner.frames for learner in learners)
    return {"frames": frames, "seconds": dt, "fps": frames / dt}


def time_env(env_type: str, steps: int = 2000) -> float:
    cfg = resolve(env_type)
    env = BAMDPWrapper(make_env(cfg.env_name, cfg.num_processes, seed=0), cfg.max_rollouts_per_task)
    env.reset()
    gen = torch.Generator().manual_seed(0)
    if env.is_discrete:
        acts = [torch.randint(env.action_space.n, (env.num_envs,), generator=gen) for _ in range(steps)]
    else:
        acts = [torch.rand(env.num_envs, env.action_space.shape[0], generator=gen) * 2 - 1 for _ in range(steps)]
    t0 = time.perf_counter()
    for a in acts:
        env.step(a)
    return steps * env.num_envs / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env-types", nargs="+", default=["gridworld_varibad", "pointrobot_varibad"])
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-overlap", action="store_true", help="also time strictly sequential VAE updates")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} cores")
    print(f"{'env-type':24s} {'env steps/s':>12s} {'train frames/s':>15s} {'seconds':>8s} {'peak RSS MB':>12s}")
    modes = [("", True)] + ([(" (sequential VAE)", False)] if args.no_overlap else [])
    for et in args.env_types:
        env_fps = time_env(et)
        for label, overlap in modes:
            res = time_training(et, args.frames, {"num_threads": args.threads, "vae_update_overlap": overlap})
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{et + label:24s} {env_fps:12,.0f} {res['fps']:15,.0f} {res['seconds']:8.1f} {rss:12,.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
