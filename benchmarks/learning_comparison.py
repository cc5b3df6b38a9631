"""Learning comparisons: several (env-type, method) arms x seeds at one frame budget, run as
separate processes (a few at a time), then a per-episode return / success table and a plot.

    python benchmarks/learning_comparison.py --suite hyperx --frames 1e6 --seeds 1 2 3 --jobs 2
    python benchmarks/learning_comparison.py --suite hypernet_grid --frames 2.5e5 --seeds 1 2 3 --jobs 2
    python benchmarks/learning_comparison.py --suite tmaze_small --frames 3e5 --seeds 1 2 3 --jobs 1
    python benchmarks/learning_comparison.py --arms gridworld_varibad gridworld_belief_oracle --frames 3e6

Each run is an ordinary `python main.py` run under --out (default benchmarks/results/); the
summary averages the last 3 evaluations of every run, then mean +- std over seeds.
"""
from __future__ import annotations

import argparse
import csv
import glob
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> (arms, main.py options every arm gets before the command line's own extras)
_TMAZE_SMALL = ["--env_kwargs", '{"maze_length": 20, "max_episode_steps": 40}', "--policy_num_steps", "160",
                "--policy_layers", "64", "32", "--policy_state_embedding_dim", "32", "--encoder_gru_hidden_size", "64"]
SUITES = {
    # HyperX (ICML 2021): without hyper-state bonuses the agent circles the mountain / misses later stages
    "hyperx": (["treasure_hunt_hyperx", "treasure_hunt_varibad", "room_hyperx", "room_varibad"], []),
    # Beck et al. 2023/2024: RNN+HN vs RNN vs VI+HN on a grid (+ the task-inference variants)
    "hypernet_grid": (["gridworld_varibad:rnn_hn", "gridworld_varibad:rnn", "gridworld_varibad:vi_hn",
                       "gridworld_varibad:ti_hn", "gridworld_varibad:bi_pp_hn"], []),
    # SplAgger vs RNN+HN on a T-maze (T-LN) small enough for a CPU: length 20, smaller networks
    "tmaze_small": (["tmaze_ln_varibad:splagger", "tmaze_ln_varibad:rnn_hn"], _TMAZE_SMALL),
}


def arm_label(arm: str) -> str:
    return arm.replace(":", "+")


def command(arm: str, seed: int, frames: str, out: str, extra: list[str]) -> list[str]:
    env_type, _, method = arm.partition(":")
    cmd = [sys.executable, os.path.join(ROOT, "main.py"), "--env-type", env_type, "--seed", str(seed),
           "--num_frames", frames, "--results_log_dir", os.path.join(out, arm_label(arm)), "--progress_bar", "false"]
    return cmd + (["--method", method] if method else []) + extra


def run_all(arms, seeds, frames, out, jobs, extra):
    queue = [(a, s) for a in arms for s in seeds]
    running: list[tuple[subprocess.Popen, str]] = []
    os.makedirs(out, exist_ok=True)
    while queue or running:
        while queue and len(running) < jobs:
            arm, seed = queue.pop(0)
            log = open(os.path.join(out, f"{arm_label(arm)}_{seed}.log"), "w")
            running.append((subprocess.Popen(command(arm, seed, frames, out, extra), stdout=log, stderr=log),
                            f"{arm} seed {seed}"))
            print(f"started {arm} seed {seed}", flush=True)
        time.sleep(5)
        for proc, name in list(running):
            if proc.poll() is not None:
                running.remove((proc, name))
                print(f"finished {name} (exit {proc.returncode})", flush=True)


def summarise(arms, out, last: int = 3) -> str:
    lines, curves = [], {}
    for arm in arms:
        runs = []
        for path in glob.glob(os.path.join(out, arm_label(arm), "logs_*", "*", "progress.csv")):
            rows = list(csv.DictReader(open(path)))
            if rows:
                runs.append(rows)
        if not runs:
            continue
        keys = [k for k in runs[0][0] if k.startswith(("return_episode_", "success_episode_"))]
        per_run = [{k: sum(float(r[k]) for r in rows[-last:]) / len(rows[-last:]) for k in keys} for rows in runs]
        frames = max(float(rows[-1]["frames"]) for rows in runs)
        cells = []
        for k in keys:
            vals = [p[k] for p in per_run]
            mean = sum(vals) / len(vals)
            std = (sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5
            cells.append(f"{k.replace('_episode_', ' ep')}: {mean:.2f} +- {std:.2f}")
        lines.append(f"| {arm} | {len(runs)} | {frames:,.0f} | " + "; ".join(cells) + " |")
        curves[arm] = runs
    return "| arm | seeds | frames | last-3-eval mean +- std over seeds |\n|---|---|---|---|\n" + "\n".join(lines), curves


def plot(curves: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    with_success = any("success_episode_1" in runs[0][0] for runs in curves.values())
    fig, axes = plt.subplots(1, 2 if with_success else 1, figsize=(12 if with_success else 7, 4), squeeze=False)
    panels = [("return_episode_", "evaluation return (sum over episodes)", sum)]
    if with_success:
        panels.append(("success_episode_", "success (mean over episodes)", lambda v: sum(v) / len(v)))
    for ax, (prefix, label, reduce) in zip(axes[0], panels):
        for arm, runs in curves.items():
            keys = [k for k in runs[0][0] if k.startswith(prefix)]
            if not keys:
                continue
            n = min(len(r) for r in runs)
            x = np.array([float(r["frames"]) for r in runs[0][:n]])
            y = np.array([[reduce([float(r[k]) for k in keys]) for r in rows[:n]] for rows in runs])
            ax.plot(x, y.mean(0), label=f"{arm} ({len(runs)} seeds)")
            ax.fill_between(x, y.mean(0) - y.std(0), y.mean(0) + y.std(0), alpha=0.2)
        ax.set_xlabel("frames")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=90, bbox_inches="tight")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", choices=sorted(SUITES))
    ap.add_argument("--arms", nargs="+", help="env-type or env-type:method")
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--frames", default="1e6")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    ap.add_argument("--summary-only", action="store_true")
    ap.add_argument("extra", nargs=argparse.REMAINDER, help="further main.py options after --")
    args = ap.parse_args()
    arms, extra = SUITES[args.suite] if args.suite else (args.arms, [])
    if not arms:
        ap.error("give --suite or --arms")
    extra = extra + [a for a in args.extra if a != "--"]
    if not args.summary_only:
        run_all(arms, args.seeds, args.frames, args.out, args.jobs, extra)
    table, curves = summarise(arms, args.out)
    print(table)
    name = args.suite or "custom"
    plot(curves, os.path.join(args.out, f"{name}.png"))
    with open(os.path.join(args.out, f"{name}.md"), "w") as f:
        f.write(table + "\n")


if __name__ == "__main__":
    main()
