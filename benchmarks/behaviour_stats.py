"""What trained agents do, from their final checkpoints: per episode of the BAMDP, the share
of fresh tasks in which the agent

    treasure hunt: climbed to the mountain top (where the treasure is revealed), found the treasure
    rooms:         reached stage 1 (G1), 2 (G2) and 3 (G3)

    python benchmarks/behaviour_stats.py RUN_DIR [RUN_DIR ...] [--tasks 200]
    python benchmarks/behaviour_stats.py benchmarks/results/treasure_hunt_*/logs_*/*  # every seed

The run dirs are only read. HyperX's claim (Zintgraf et al. 2021): without hyper-state bonuses
the agent circles the mountain / never reaches stages 2-3.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from agent import load_run  # noqa: E402
from environments.bamdp import build_env  # noqa: E402
from evaluation import run_bamdp  # noqa: E402


def behaviour(run_dir: str, num_tasks: int, seed: int) -> dict[str, list[float]]:
    """Shares of tasks per episode, from the run's last checkpoint loaded into an agent."""
    run = load_run(run_dir)
    cfg = run.cfg
    env = build_env(cfg, num_tasks, seed, run.agent.device)
    inner, R = env.env, cfg.max_rollouts_per_task
    rows = torch.arange(num_tasks)
    counts: dict[str, torch.Tensor] = {}

    def mark(name: str, hit: torch.Tensor, ep: torch.Tensor, live: torch.Tensor) -> None:
        c = counts.setdefault(name, torch.zeros(num_tasks, R))
        c[rows, ep] = torch.maximum(c[rows, ep], hit.float().cpu() * live.cpu())

    def on_step(info, ep, live):
        ep = ep.cpu()
        if hasattr(inner, "peak_radius"):  # treasure hunt
            mark("mountain_top", torch.linalg.vector_norm(info["pos"], dim=-1) < inner.peak_radius, ep, live)
        if "stage" in info:  # rooms
            for k in (1, 2, 3):
                mark(f"stage_{k}", info["stage"] >= k, ep, live)
        if "success" in info:
            mark("success", info["success"] > 0, ep, live)

    res = run_bamdp(run.agent, env, on_step=on_step)
    out = {name: c.mean(0).tolist() for name, c in counts.items()}
    out["return"] = res["returns"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", help="run directories (with config.json and checkpoints/)")
    ap.add_argument("--tasks", type=int, default=200, help="fresh tasks per run")
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for run in args.runs:
        stats = behaviour(run, args.tasks, args.seed)
        cells = "; ".join(f"{k}: " + "/".join(f"{v:.2f}" for v in vals) for k, vals in stats.items())
        print(f"{run}: {cells}", flush=True)


if __name__ == "__main__":
    main()
