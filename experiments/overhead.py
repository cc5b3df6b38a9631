"""``python -m experiments.overhead [--trials N] [--frames F] [--concurrent K]``: what Ray Tune
costs per trial. The same tiny trials (gridworld_varibad, tiny networks; the overrides of
tests/conftest.py::tiny) run one after another in this process and then as a Ray Tune
experiment on a local instance; prints Ray's start/stop time and the extra seconds per trial.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

TINY = {"num_processes": 4, "policy_num_steps": 32, "precollect_len": 0, "ppo_num_minibatch": 2,
        "vae_batch_num_trajs": 2, "size_vae_buffer": 50, "num_vae_updates": 1, "eval_interval": 2, "vis_interval": 1000,
        "log_interval": 1, "save_interval": 1000, "num_eval_envs": 2, "progress_bar": False,
        "encoder_gru_hidden_size": 16, "latent_dim": 3, "policy_layers": [16], "vae_subsample_elbos": None,
        "vae_subsample_decodes": None}


def measure(trials: int, frames: int, concurrent: int) -> dict[str, float]:
    from experiments import sets
    from experiments.ray_runner import RayInstance, RunOptions, tune_trials
    from experiments.run import run_in_process

    tmp = tempfile.mkdtemp(prefix="exp_overhead_")
    path = os.path.join(tmp, "overhead.json")
    with open(path, "w") as f:
        json.dump(dict(arms=["gridworld_varibad:rnn"], seeds=list(range(1, trials + 1)), num_frames=frames,
                       options=TINY), f)
    exp = sets.load(path)
    t0 = time.time()
    run_in_process(exp, os.path.join(tmp, "inproc"), exp.trials)
    inproc = time.time() - t0
    folder = os.path.join(tmp, "ray")
    os.makedirs(folder)
    t0 = time.time()
    with RayInstance(folder, num_cpus=max(concurrent, 1)):
        t1 = time.time()
        tune_trials(exp, folder, exp.trials, RunOptions(max_concurrent=concurrent))
        t2 = time.time()
    t3 = time.time()
    spans = {"inproc": _spans(os.path.join(tmp, "inproc")), "ray": _spans(folder)}
    shutil.rmtree(tmp, ignore_errors=True)
    ray_spans = sorted(spans["ray"])
    gaps = [b[0] - a[1] for a, b in zip(ray_spans, ray_spans[1:])] if concurrent == 1 else []
    return {"trials": trials, "concurrent": concurrent, "in_process_s": inproc, "ray_start_s": t1 - t0,
            "ray_trials_s": t2 - t1, "ray_stop_s": t3 - t2, "ray_total_s": t3 - t0,
            "overhead_per_trial_s": ((t2 - t1) * concurrent - inproc) / trials,
            "trial_in_process_s": _mean([b - a for a, b in spans["inproc"]]),
            "trial_in_ray_s": _mean([b - a for a, b in ray_spans]),
            "first_trial_start_s": ray_spans[0][0] - t1 if ray_spans else float("nan"),
            "gap_between_trials_s": _mean(gaps)}


def _spans(folder: str) -> list[tuple[float, float]]:
    """(start, end) of every trial in a set folder, from its trial.json."""
    from experiments.trial import read_json

    out = []
    for name in os.listdir(folder):
        info = read_json(os.path.join(folder, name, "trial.json"))
        if info and info.get("starts"):
            out.append((info["starts"][0]["time"], info["updated"]))
    return out


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.overhead", description=__doc__)
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--frames", type=int, default=768)
    ap.add_argument("--concurrent", type=int, default=1, help="Ray trials at a time (1: compare like for like)")
    args = ap.parse_args(argv)
    res = measure(args.trials, args.frames, args.concurrent)
    print(f"{res['trials']} trials of {args.frames} frames: in-process {res['in_process_s']:.1f} s "
          f"({res['in_process_s'] / res['trials']:.1f} s per trial)")
    print(f"Ray: start {res['ray_start_s']:.1f} s, trials {res['ray_trials_s']:.1f} s at {res['concurrent']} at a time, "
          f"stop {res['ray_stop_s']:.1f} s (total {res['ray_total_s']:.1f} s)")
    print(f"overhead per trial (trial time x concurrency - in-process, per trial): {res['overhead_per_trial_s']:.2f} s")
    print(f"one trial: {res['trial_in_process_s']:.2f} s in-process, {res['trial_in_ray_s']:.2f} s in a Ray worker; "
          f"first trial starts {res['first_trial_start_s']:.1f} s after Ray is up (Tune setup, worker imports); "
          f"gap between trials {res['gap_between_trials_s']:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
