"""Atomic checkpoints: everything needed to continue a run, written to a temp file and
renamed over the previous one (a crash mid-write never leaves a broken checkpoint)."""
from __future__ import annotations

import os

import torch

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(state: dict, run_dir: str) -> str:
    folder = os.path.join(run_dir, "checkpoints")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, CHECKPOINT)
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(run_dir: str) -> dict:
    path = os.path.join(run_dir, "checkpoints", CHECKPOINT)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}: nothing to resume")
    return torch.load(path, map_location="cpu", weights_only=False)
