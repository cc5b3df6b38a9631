"""Reporting for every trainer: TensorBoard tags (VariBAD/HyperX names), ``progress.csv``
rows and the learning-curve plot, from plain dicts of numbers.

Training statistics come as {group: {name: value}}; a group's tag prefix and x axis:

    policy       policy_losses/<name>   per iteration
    vae          vae_losses/<name>      per iteration
    exploration  exploration/<name>     per frame   (names with a "/" such as rnd/loss_* as they are)
    <other>      <other>/<name>         per iteration

Evaluations come as {metric: [value per BAMDP episode]}: "returns" (+ "returns_std") become
``return_avg_per_{iter,frame}/episode_k`` and ``return_std_...``, any other list metric
``<metric>_avg_per_{iter,frame}/episode_k``; each also becomes a progress.csv column
``<metric>_episode_k`` (``return_episode_k`` for the returns). A ``prefix`` (e.g. "eval_") is
put in front of every evaluation tag and column. Scalar metrics are logged as they are.
Evaluations on several task sets (finite training tasks, ReId) carry {"sets": {name: metrics}}:
each set is logged with the prefix "<name>_" (``train_return_avg_per_frame/episode_k``,
``eval_return_avg_per_frame/sum_episodes``, ...) besides the top-level metrics.
"""
from __future__ import annotations

import os

from utils import plotting
from utils.logger import Logger

GROUPS = {"policy": ("policy_losses/", "iter"), "vae": ("vae_losses/", "iter"), "exploration": ("exploration/", "frame")}


class Reporter:
    def __init__(self, run_dir: str, resume: bool = False, resume_iteration: int | None = None,
                 resume_time: float | None = None):
        """On resume, rows and events logged after the checkpoint (iteration ``resume_iteration``,
        written at ``resume_time``) are dropped: every iteration is logged once, whatever the kills."""
        self.run_dir = run_dir
        self.logger = Logger(run_dir, resume=resume, resume_iteration=resume_iteration, resume_time=resume_time)

    def flush(self) -> None:
        self.logger.flush()

    def add(self, tag: str, value, x: int) -> None:
        self.logger.add(tag, value, x)

    def training(self, stats: dict, iteration: int, frames: int) -> None:
        for group, values in stats.items():
            prefix, axis = GROUPS.get(group, (f"{group}/", "iter"))
            x = frames if axis == "frame" else iteration
            for key, val in values.items():
                self.logger.add(key if "/" in key else prefix + key, val, x)

    def evaluation(self, res: dict, iteration: int, frames: int, fps: float, prefix: str = "",
                   write_row: bool = True) -> None:
        log = self.logger
        for name, values in res.items():
            if name == "returns_std" or not isinstance(values, (list, tuple)):
                continue
            base = "return" if name == "returns" else name
            std = res.get("returns_std") if name == "returns" else None
            for k, m in enumerate(values):
                for axis, x in (("iter", iteration), ("frame", frames)):
                    log.add(f"{prefix}{base}_avg_per_{axis}/episode_{k + 1}", m, x)
                    if std is not None:
                        log.add(f"{prefix}{base}_std_per_{axis}/episode_{k + 1}", std[k], x)
                log.record(f"{prefix}{base}_episode_{k + 1}", m)
        for name, value in res.items():
            if isinstance(value, (int, float)):
                log.add(f"{prefix}{name}", value, frames)
                log.record(f"{prefix}{name}", value)
        for set_name, sub in res.get("sets", {}).items():  # ReId: train_/eval_ tags, with sum_episodes
            self.evaluation(sub, iteration, frames, fps, prefix=f"{prefix}{set_name}_", write_row=False)
            total = sum(sub["returns"])
            for axis, x in (("iter", iteration), ("frame", frames)):
                log.add(f"{prefix}{set_name}_return_avg_per_{axis}/sum_episodes", total, x)
            log.record(f"{prefix}{set_name}_return_sum_episodes", total)
        if write_row:
            self.end_row(iteration, frames, fps)

    def end_row(self, iteration: int, frames: int, fps: float) -> None:
        """Close the progress.csv row of this evaluation and redraw the learning curves."""
        log = self.logger
        log.record("iteration", iteration)
        log.record("frames", frames)
        log.record("fps", fps)
        log.dump_row()
        plotting.plot_learning_curves(os.path.join(self.run_dir, "progress.csv"),
                                      os.path.join(self.run_dir, "plots", "returns.png"))

    def close(self) -> None:
        self.logger.close()
