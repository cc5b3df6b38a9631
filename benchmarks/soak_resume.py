"""Soak test of kill -9 + resume: a gridworld_varibad run killed at random moments (SIGKILL,
no warning) and resumed each time, until it finishes; then its final checkpoint, progress.csv
and TensorBoard scalars are compared with an uninterrupted run of the same config.

    python benchmarks/soak_resume.py [--frames 3000000] [--min-kills 20] [--seed 5]

Prints the number of kills, whether every parameter tensor is bit-identical, whether
progress.csv holds each iteration once with the same values, and the wall time of both runs.
If the run finishes before enough kills, its budget is extended (``--resume --num_frames``) and
the reference gets the same extensions (the last iteration of every budget is evaluated).
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _cmd(args: list[str]) -> list[str]:
    return [sys.executable, os.path.join(ROOT, "main.py"), *args]


def _run_dir(root: str) -> str:
    (env_dir,) = os.listdir(root)
    (run,) = os.listdir(os.path.join(root, env_dir))
    return os.path.join(root, env_dir, run)


def _rows(run: str) -> list[dict]:
    with open(os.path.join(run, "progress.csv")) as f:
        return [{k: v for k, v in r.items() if k != "fps"} for r in csv.DictReader(f)]


def _tensors(run: str) -> dict:
    import torch

    from utils.checkpoint import load_checkpoint

    state = load_checkpoint(run, log=None)
    out = {}

    def walk(x, path):
        if isinstance(x, torch.Tensor):
            out[path] = x
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{path}/{k}")

    for key in ("policy", "vae", "updater", "rew_norm"):
        walk(state[key], key)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=3_000_000)
    ap.add_argument("--min-kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--max-gap", type=float, default=8.0, help="longest time between kills (s)")
    args = ap.parse_args()
    common = ["--env-type", "gridworld_varibad", "--num_frames", str(args.frames), "--seed", str(args.seed),
              "--save_interval", "10", "--eval_interval", "20", "--log_interval", "5", "--vis_interval", "100000",
              "--progress_bar", "false"]
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        ref_root, soak_root = os.path.join(tmp, "ref"), os.path.join(tmp, "soak")
        kills, t0, budgets = 0, time.time(), [args.frames]
        proc = subprocess.Popen(_cmd(common + ["--results_log_dir", soak_root]), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        while True:
            gap = rng.uniform(0.5, args.max_gap)
            try:
                proc.wait(timeout=gap)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
            else:
                if proc.returncode != 0:
                    sys.exit(f"the soak run failed with exit code {proc.returncode}")
                if kills >= args.min_kills:
                    break
                # finished too early: extend the run so that more kills can happen (the reference
                # is extended the same way: a budget's last iteration is evaluated)
                args.frames += 400_000
                budgets.append(args.frames)
            run = _run_dir(soak_root)
            extra = ["--num_frames", str(args.frames)] if proc.returncode == 0 else []
            proc = subprocess.Popen(_cmd(["--resume", run, *extra]), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        t_soak = time.time() - t0
        soak = _run_dir(soak_root)
        t0 = time.time()  # the uninterrupted reference, with the same budget history
        subprocess.run(_cmd(common + ["--results_log_dir", ref_root]), check=True, capture_output=True)
        ref = _run_dir(ref_root)
        for budget in budgets[1:]:
            subprocess.run(_cmd(["--resume", ref, "--num_frames", str(budget)]), check=True, capture_output=True)
        t_ref = time.time() - t0
        a, b = _tensors(ref), _tensors(soak)
        same = a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and bool((a[k] == b[k]).all()) for k in a)
        ra, rb = _rows(ref), _rows(soak)
        its = [r["iteration"] for r in rb]
        print(f"frames {args.frames}, kills {kills}, uninterrupted {t_ref:.0f} s, soak {t_soak:.0f} s (incl. restarts)")
        print(f"final checkpoint tensors bit-identical: {same} ({len(a)} tensors)")
        print(f"progress.csv: {len(rb)} rows, each iteration once: {len(its) == len(set(its))}, equal to the "
              f"uninterrupted run: {ra == rb}")


if __name__ == "__main__":
    main()
