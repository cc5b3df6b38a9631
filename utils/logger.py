"""Run directory, TensorBoard (tensorboardX), progress.csv and the progress line.

Run dir: <results_log_dir>/logs_<EnvName>/<exp_label>_<seed>__<YYYY-MM-DD_HH-MM-SS>/
An existing dir is never reused: a suffix _2, _3, ... is added instead.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import sys
import time

from tensorboardX import SummaryWriter


def new_run_dir(root: str, env_name: str, label: str, seed: int) -> str:
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    base = os.path.join(root, f"logs_{env_name}", f"{label}_{seed}__{stamp}")
    path, k = base, 1
    while True:
        try:
            os.makedirs(path)  # fails if it exists: never overwrite a run
            return path
        except FileExistsError:
            k += 1
            path = f"{base}_{k}"


class Logger:
    def __init__(self, run_dir: str, resume: bool = False):
        self.run_dir = run_dir
        self.writer = SummaryWriter(run_dir)
        self.csv_path = os.path.join(run_dir, "progress.csv")
        self.columns: list[str] = []
        self.rows: list[dict] = []
        if resume and os.path.exists(self.csv_path):
            with open(self.csv_path) as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or [])
                self.rows = list(reader)
        self.pending: dict[str, float] = {}

    def add(self, tag: str, value, x: int) -> None:
        value = float(value)
        self.writer.add_scalar(tag, value, x)

    def record(self, key: str, value) -> None:
        """A column of the next progress.csv row."""
        self.pending[key] = float(value)

    def dump_row(self) -> None:
        if not self.pending:
            return
        row, self.pending = self.pending, {}
        new_cols = [k for k in row if k not in self.columns]
        self.rows.append(row)
        if new_cols:  # rewrite with the wider header (rare)
            self.columns += new_cols
            tmp = self.csv_path + ".tmp"
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, self.columns)
                w.writeheader()
                w.writerows(self.rows)
            os.replace(tmp, self.csv_path)
        else:
            with open(self.csv_path, "a", newline="") as f:
                csv.DictWriter(f, self.columns).writerow(row)
        self.rows = self.rows[-10000:] if not new_cols else self.rows

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


def save_json(obj, path: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)


class Progress:
    """Frames, fps, ETA and the latest returns on stderr: a redrawn status line on a
    terminal (at most 4x/s), a plain line every 60 s otherwise (nohup, CI, log files)."""

    def __init__(self, total_frames: int, enabled: bool = True, start_frames: int = 0):
        self.total, self.enabled = total_frames, enabled
        self.tty = sys.stderr.isatty()
        self.t0, self.f0 = time.time(), start_frames
        self.last_draw = 0.0 if self.tty else time.time()
        self.info = ""

    def fps(self, frames: int) -> float:
        return (frames - self.f0) / max(time.time() - self.t0, 1e-9)

    def update(self, frames: int, info: str | None = None) -> None:
        if info is not None:
            self.info = info
        now = time.time()
        if not self.enabled or now - self.last_draw < (0.25 if self.tty else 60.0):
            return
        self.last_draw = now
        frac = min(frames / max(self.total, 1), 1.0)
        fps = self.fps(frames)
        eta = (self.total - frames) / fps if fps > 0 else math.inf
        eta_s = f"{eta / 60:5.1f}m" if math.isfinite(eta) else "  ?"
        text = f"{frames:,}/{self.total:,} frames  {fps:,.0f} fps  eta {eta_s}  {self.info}"
        if self.tty:
            bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
            sys.stderr.write(f"\r[{bar}] {text}   ")
        else:
            sys.stderr.write(f"[{100 * frac:5.1f}%] {text}\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")
