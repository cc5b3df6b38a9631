"""Trainer registry: the ``trainer`` option names one of these loops.

    varibad    metalearner.MetaLearner: the on-policy VariBAD family (VariBAD, RL2, oracles,
               HyperX, hypernetwork policies, task inference, dream envs)

Entries are "module:Class" strings, imported only when a run is built, so that the CLI can
validate a config without importing torch. A new trainer subclasses ``trainers.base.Trainer``
and adds one line here.
"""
from __future__ import annotations

import importlib

TRAINERS: dict[str, str] = {
    "varibad": "metalearner:MetaLearner",
    "maml": "trainers.maml:MAMLTrainer",
    "hyperzero": "trainers.hyperzero:HyperZeroTrainer",
}


def trainer_class(name: str):
    if name not in TRAINERS:
        from utils.registry import closest

        raise KeyError(f"unknown trainer {name!r}.{closest(name, TRAINERS)} Available: {', '.join(sorted(TRAINERS))}")
    module, cls = TRAINERS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_trainer(cfg, run_dir: str, resume: bool = False):
    """The trainer ``cfg.trainer`` names, for a new run dir (or ``resume`` an existing one)."""
    return trainer_class(cfg.trainer)(cfg, run_dir, resume=resume)
