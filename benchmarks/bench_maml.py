"""Speed of the maml trainer at the seed's settings: meta-iterations/s and env steps/s.

    python benchmarks/bench_maml.py                       # nav_wide_ring_maml, nav_wide_ring_mime, halfcheetah_vel_maml
    python benchmarks/bench_maml.py --presets nav_wide_ring_mime --iterations 3 --threads 1

Per preset: one warm-up meta-iteration (not timed), then ``--iterations`` timed ones; the time is split
into sampling (all rollouts of the iteration, without the bonus), the dynamics model (VIME: bonus + meta-update) and the
learner (baseline, advantages, inner loop, TRPO). Env steps/s counts every copy's step.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bench(preset: str, iterations: int, threads: int, **overrides) -> dict:
    import torch

    from config.loader import resolve
    from trainers import build_trainer

    cfg = resolve(preset, values={"progress_bar": False, "num_threads": threads, "pre_epochs": 0,
                                  "dyn_warmup_updates": 1, **overrides})
    trainer = build_trainer(cfg, tempfile.mkdtemp(prefix="bench_maml_"))
    timers = {"sample": 0.0, "dynamics": 0.0, "learner": 0.0}
    nested = [0.0]  # time of timed calls inside the running one (exclusive timing)

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            outer, nested[0] = nested[0], 0.0
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            elapsed = time.perf_counter() - t0
            timers[name] += elapsed - nested[0]
            nested[0] = outer + elapsed
            return out
        return wrapper

    trainer.sample = timed("sample", trainer.sample)
    trainer.learner.step = timed("learner", trainer.learner.step)
    if trainer.dynamics is not None:
        trainer.dynamics.meta_update = timed("dynamics", trainer.dynamics.meta_update)
        trainer.add_bonus = timed("dynamics", trainer.add_bonus)
    trainer.train_iteration()  # warm-up (torch.func first calls)
    for k in timers:
        timers[k] = 0.0
    frames0, t0 = trainer.frames, time.perf_counter()
    for _ in range(iterations):
        trainer.train_iteration()
        trainer.iter += 1
    wall = time.perf_counter() - t0
    steps = trainer.frames - frames0
    torch.set_num_threads(threads)
    return {"preset": preset, "iter_per_s": iterations / wall, "steps_per_s": steps / wall,
            "sample_steps_per_s": steps / max(timers["sample"], 1e-9), "s_per_iter": wall / iterations,
            **{f"{k}_s": v / iterations for k, v in timers.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["nav_wide_ring_maml", "nav_wide_ring_mime", "halfcheetah_vel_maml"])
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    print(f"{'preset':26s} {'s/iter':>8s} {'iter/s':>8s} {'steps/s':>9s} {'sampling steps/s':>17s} "
          f"{'sample s':>9s} {'dyn s':>7s} {'learner s':>10s}")
    for preset in args.presets:
        r = bench(preset, args.iterations, args.threads)
        print(f"{r['preset']:26s} {r['s_per_iter']:8.2f} {r['iter_per_s']:8.3f} {r['steps_per_s']:9.0f} "
              f"{r['sample_steps_per_s']:17.0f} {r['sample_s']:9.2f} {r['dynamics_s']:7.2f} {r['learner_s']:10.2f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
