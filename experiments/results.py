"""Read a set's results: its trials' run dirs, status and progress.csv, as plain records.

``collect(target, root)`` takes a set (name or file; its trials' run dirs under
``<root>/<set>``) or a list of run dirs (any ``main.py`` run: arm and seed from its
config.json), so that plots and tables work on both.
"""
from __future__ import annotations

import csv
import glob
import os
from dataclasses import dataclass, field

from experiments.sets import ExperimentSet, Trial
from experiments.sets import load as load_set
from experiments.trial import TRIAL_FILE, read_json, trial_status

DEFAULT_ROOT = os.path.join("logs", "experiments")


@dataclass
class Run:
    """One trial's run dir and what is on disk."""

    trial: Trial
    run_dir: str
    status: str
    rows: list[dict[str, float]] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    @property
    def frames(self) -> float:
        return self.rows[-1]["frames"] if self.rows else 0.0

    def columns(self, prefix: str) -> list[str]:
        """progress.csv columns ``<prefix>_episode_k`` in episode order."""
        keys = [k for k in (self.rows[-1] if self.rows else {}) if k.startswith(prefix + "_episode_")]
        return sorted(keys, key=lambda k: int(k.rsplit("_", 1)[1]))


def set_dir(root: str, name: str) -> str:
    return os.path.abspath(os.path.join(root, name))


def read_progress(path: str) -> list[dict[str, float]]:
    """progress.csv rows as floats (empty cells dropped), one per evaluation, by iteration."""
    if not os.path.isfile(path):
        return []
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            vals = {}
            for k, v in row.items():
                if k is None or v in (None, ""):
                    continue
                try:
                    vals[k] = float(v)
                except ValueError:
                    continue
            if "frames" in vals:
                rows.append(vals)
    return sorted(rows, key=lambda r: r.get("iteration", r["frames"]))


def collect(target: str | list[str], root: str = DEFAULT_ROOT) -> tuple[str, list[Run]]:
    """(name, runs) of a set or of a list of run dirs."""
    if isinstance(target, str):
        exp_set = load_set(target, check_envs=False)
        return exp_set.name, set_runs(exp_set, set_dir(root, exp_set.name))
    return "runs", [run_from_dir(d) for d in _expand_dirs(target)]


def set_runs(exp_set: ExperimentSet, folder: str) -> list[Run]:
    runs = []
    for trial in exp_set.trials:
        run_dir = os.path.join(folder, trial.trial_id)
        runs.append(Run(trial, run_dir, trial_status(run_dir), read_progress(os.path.join(run_dir, "progress.csv")),
                        read_json(os.path.join(run_dir, TRIAL_FILE)) or {}))
    return runs


def _expand_dirs(paths: list[str]) -> list[str]:
    """Run dirs given directly, or found below the given folders (any dir with a progress.csv)."""
    out = []
    for path in paths:
        if os.path.isfile(os.path.join(path, "progress.csv")):
            out.append(path)
        else:
            out += sorted(os.path.dirname(p) for p in glob.glob(os.path.join(path, "**", "progress.csv"),
                                                                   recursive=True))
    if not out:
        raise FileNotFoundError(f"no run dirs (with a progress.csv) in {', '.join(paths)}")
    return out


def run_from_dir(run_dir: str) -> Run:
    """A plain run dir as a Run: its arm is env_type(+method) from config.json."""
    cfg = read_json(os.path.join(run_dir, "config.json")) or {}
    info = read_json(os.path.join(run_dir, TRIAL_FILE)) or {}
    if "trial" in info:
        trial = Trial.from_dict(info["trial"])
    else:
        env_type, method = cfg.get("env_type", "?"), cfg.get("method")
        trial = Trial("runs", env_type + (f"+{method}" if method else ""), env_type, method, {},
                      int(cfg.get("seed", 0)), {"num_frames": cfg.get("num_frames", 0)})
    rows = read_progress(os.path.join(run_dir, "progress.csv"))
    status = trial_status(run_dir) if info else ("done" if rows and rows[-1]["frames"] >= trial.num_frames else "?")
    return Run(trial, run_dir, status, rows, info)
