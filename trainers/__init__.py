"""Trainers: the ``trainer`` option names one (table: ``config/trainers.py``). Every trainer
subclasses ``trainers.base.Trainer``, which owns what they share."""
from __future__ import annotations

import importlib

from config.trainers import TRAINERS  # noqa: E402  (the name -> class table)


def trainer_class(name: str):
    if name not in TRAINERS:
        from utils.registry import closest

        raise KeyError(f"unknown trainer {name!r}.{closest(name, TRAINERS)} Available: {', '.join(sorted(TRAINERS))}")
    module, cls = TRAINERS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_trainer(cfg, run_dir: str, resume: bool = False):
    """The trainer ``cfg.trainer`` names, for a new run dir (or ``resume`` an existing one);
    with ``--num_seeds`` > 1, that many of its runs in lock step (trainers/multi_seed.py)."""
    if getattr(cfg, "num_seeds", 1) > 1:
        from trainers.multi_seed import MultiSeedTrainer

        return MultiSeedTrainer(cfg, run_dir, resume=resume)
    return trainer_class(cfg.trainer)(cfg, run_dir, resume=resume)
