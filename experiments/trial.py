"""One trial of a set in its own run dir: start it, or continue it from the run dir's checkpoint,
and hand every evaluation to a ``report`` function (Ray Tune's, or none in-process).

A trial's run dir is a normal run dir (``config.json``, ``progress.csv``, ``checkpoints/``,
``main.py --resume`` works on it) plus two small files:

    trial.json     written by the trial: the trial spec, status (running/done/stopped), every
                   start (frames it continued from), the last evaluation's metrics
    outcome.json   written by the driver when Ray ends the trial: done / stopped (early
                   stopping) / failed (after the retries), with the error

A checkpoint is saved at every evaluation after the first (after its progress.csv row), so a
killed run loses at most the iterations since the last evaluation; on resume, progress.csv
rows past the checkpoint are dropped, so every iteration is counted once. A run killed before
its first checkpoint starts again from scratch in the same run dir.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import time
from typing import Any, Callable

from experiments.sets import Trial

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRIAL_FILE = "trial.json"
OUTCOME_FILE = "outcome.json"
FINISHED = ("done", "stopped")

Report = Callable[[dict], Any]


class StopTrial(Exception):
    """Raised by a report function to end the trial early (it still ends with a checkpoint)."""


def write_json(path: str, obj: dict) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, default=str)
    os.replace(tmp, path)


def read_json(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def has_checkpoint(run_dir: str) -> bool:
    return os.path.isfile(os.path.join(run_dir, "checkpoints", "checkpoint.pt"))


def trial_status(run_dir: str) -> str:
    """pending / running / done / stopped / failed (as last recorded; see status.py for liveness)."""
    outcome = read_json(os.path.join(run_dir, OUTCOME_FILE)) or {}
    info = read_json(os.path.join(run_dir, TRIAL_FILE)) or {}
    if info.get("status") in FINISHED:
        return info["status"]
    if outcome.get("status"):
        return outcome["status"]
    return info.get("status", "pending") if os.path.isdir(run_dir) else "pending"


def is_finished(run_dir: str) -> bool:
    return trial_status(run_dir) in FINISHED


def flat_metrics(metrics: dict, score: str = "return") -> dict[str, float]:
    """An evaluation as scalars: return_episode_k, success_episode_k, <name>_episode_k, their
    means (``return_mean``, ...), ``score`` (the set's ranking metric) and the scalars as they are."""
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if name == "returns_std":
            continue
        if isinstance(value, (list, tuple)):
            base = "return" if name == "returns" else name
            vals = [float(v) for v in value]
            for k, v in enumerate(vals):
                out[f"{base}_episode_{k + 1}"] = v
            if vals:
                out[f"{base}_mean"] = sum(vals) / len(vals)
        elif isinstance(value, (int, float)):
            out[name] = float(value)
    key = f"{score}_mean"
    if key in out:
        out["score"] = out[key]
    elif "return_mean" in out:
        out["score"] = out["return_mean"]
    return out


def truncate_progress(run_dir: str, last_iteration: int) -> int:
    """Drop progress.csv rows after ``last_iteration`` (written after the checkpoint the run
    continues from); returns how many were dropped."""
    path = os.path.join(run_dir, "progress.csv")
    if not os.path.isfile(path):
        return 0
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns, rows = list(reader.fieldnames or []), list(reader)
    # a run continued from iteration 0 evaluates the untrained agent again: keep no row then
    keep = [r for r in rows if r.get("iteration") not in (None, "") and float(r["iteration"]) <= last_iteration]
    keep = keep if last_iteration > 0 else []
    if len(keep) == len(rows):
        return 0
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(keep)
    os.replace(tmp, path)
    return len(rows) - len(keep)


def _wait_for_previous_writer(info: dict, seconds: float = 30.0) -> None:
    """A killed driver's worker may live on for a moment: never train a trial in two processes.
    Waits for the process of the previous start (same host, same process: pid and start time)
    to end; raises if it does not."""
    try:
        import psutil
    except ImportError:
        return
    start = (info.get("starts") or [{}])[-1]
    pid = start.get("pid")
    if not pid or pid == os.getpid() or start.get("host") != socket.gethostname():
        return
    t0 = time.time()
    while time.time() - t0 < seconds:
        try:
            proc = psutil.Process(pid)
            if proc.create_time() > start["time"] or proc.status() == psutil.STATUS_ZOMBIE:
                return  # a different process with a recycled pid, or already dead
        except psutil.Error:
            return
        time.sleep(0.5)
    raise RuntimeError(f"trial {info['trial']['arm']} seed {info['trial']['seed']} is still being trained by "
                       f"process {pid}; stop it first")


def _build(trial: Trial, run_dir: str):
    """The trainer for this run dir: continued from its checkpoint, or a fresh run."""
    from config.loader import resolve
    from trainers import build_trainer
    from utils.checkpoint import load_checkpoint

    if has_checkpoint(run_dir):
        saved = read_json(os.path.join(run_dir, "config.json")) or {}
        env_type = saved.pop("env_type", trial.env_type)
        cfg = resolve(env_type, values=saved) if saved else trial.config()
        state = load_checkpoint(run_dir)
        truncate_progress(run_dir, int(state["iter"]))
        del state
        return build_trainer(cfg, run_dir, resume=True), True
    if os.path.isdir(run_dir):  # started but killed before its first checkpoint: start again
        keep = {TRIAL_FILE}
        for name in os.listdir(run_dir):
            if name not in keep:
                path = os.path.join(run_dir, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    os.makedirs(run_dir, exist_ok=True)
    return build_trainer(trial.config(), run_dir, resume=False), False


def run_trial(trial: Trial, run_dir: str, report: Report | None = None, score: str = "return") -> dict:
    """Train ``trial`` in ``run_dir`` (continuing from its checkpoint if there is one); ``report``
    gets every evaluation as flat metrics and may raise StopTrial. Returns the trial record."""
    os.makedirs(run_dir, exist_ok=True)
    info_path = os.path.join(run_dir, TRIAL_FILE)
    info = read_json(info_path) or {"trial": trial.to_dict(), "starts": []}
    if info.get("status") in FINISHED:
        return info
    _wait_for_previous_writer(info)
    try:
        os.remove(os.path.join(run_dir, OUTCOME_FILE))  # a failed attempt's outcome: this one decides
    except FileNotFoundError:
        pass
    began = time.time()
    trainer, resumed = _build(trial, run_dir)
    info["starts"].append({"time": began, "built_s": time.time() - began, "resumed": resumed, "frames": int(trainer.frames),
                           "iteration": int(trainer.iter), "pid": os.getpid(), "host": socket.gethostname()})
    info.update(status="running", updated=time.time(), num_frames=trial.num_frames)
    write_json(info_path, info)

    def on_evaluation(tr, metrics: dict):
        if tr.iter > 0:
            tr.save()  # the checkpoint matches progress.csv up to this evaluation
        flat = {**flat_metrics(metrics, score), "frames": float(tr.frames), "iteration": float(tr.iter)}
        info.update(last=flat, updated=time.time())
        write_json(info_path, info)
        if report is not None:
            try:
                report(flat)
            except StopTrial:
                info["stop_requested"] = True
                return True
        return None

    trainer.train(callbacks=[on_evaluation])
    finished = trainer.frames >= trial.num_frames or trainer.iter >= trainer.num_iterations
    info.update(status="done" if finished else "stopped", updated=time.time(), frames=int(trainer.frames))
    write_json(info_path, info)
    return info
