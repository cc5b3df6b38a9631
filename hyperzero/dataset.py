"""HyperZero's rollout dataset on disk (no pickle) and the split by unique context.

Layout of a dataset directory::

    meta.json              {"format": "hyperzero-rollouts-v1", "env_name", "obs_dim", "act_dim",
                            "gamma" (the experts' discount), "rollout_seed", "episode_steps"
                            (pipeline datasets), "contexts": [{"file", "margin",
                            "length", "episodes", "steps", "expert_return"}, ...]}
    context_000.npz ...    one file per context (np.savez, plain arrays; loaded with
                           allow_pickle=False), E episodes x T steps:
                               state       [E, T, obs_dim]   s_t
                               action      [E, T, act_dim]   the expert's deterministic action a_t
                               next_state  [E, T, obs_dim]   s_{t+1}
                               reward      [E, T, 1]         r_t
                               discount    [E, T, 1]         DMC time-step discount (always 1: the
                                                             tasks never terminate; the time limit
                                                             is not an absorbing state)
                               value       [E, T, 1]         the expert's critic Q1(s_t, a_t)
                               reward_param   [1]            the margin
                               dynamics_param [1]            the body length
    split-<input>-seed-<seed>.json
                           {"input", "seed", "test_fraction", "train": [context key, ...],
                            "test": [...]}: written next to the data by ``write_split``

A context key is the tuple of the values the model sees: (margin,) for input ``rew``,
(length,) for ``dyn`` and (margin, length) for ``rew_dyn``. The split shuffles the *unique*
keys with ``np.random.default_rng(seed)`` and puts ``max(1, round(test_fraction * n))`` of them in
the test set (HyperZero: fraction 0.15), so no test context value is seen in training.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
import torch

FORMAT = "hyperzero-rollouts-v1"
ARRAYS = ("state", "action", "next_state", "reward", "discount", "value")
INPUTS = ("rew", "dyn", "rew_dyn")


@dataclass
class ContextRollouts:
    margin: float
    length: float
    arrays: dict  # name -> np.ndarray [E, T, dim]

    def key(self, input_: str) -> tuple:
        return context_key(self.margin, self.length, input_)


def context_key(margin: float, length: float, input_: str) -> tuple:
    if input_ not in INPUTS:
        raise ValueError(f"input must be one of {INPUTS}, got {input_!r}")
    m, L = round(float(margin), 6), round(float(length), 6)
    return {"rew": (m,), "dyn": (L,), "rew_dyn": (m, L)}[input_]


def context_dim(input_: str) -> int:
    return 2 if input_ == "rew_dyn" else 1


def save_context(root: str, index: int, rollouts: ContextRollouts) -> str:
    """Write one context's arrays; returns the file name (relative to root)."""
    os.makedirs(root, exist_ok=True)
    name = f"context_{index:03d}.npz"
    arrays = {k: np.asarray(rollouts.arrays[k], dtype=np.float32) for k in ARRAYS}
    tmp = os.path.join(root, name + ".tmp.npz")
    np.savez(tmp, reward_param=np.array([rollouts.margin]), dynamics_param=np.array([rollouts.length]), **arrays)
    os.replace(tmp, os.path.join(root, name))
    return name


def save_dataset(root: str, rollouts: list[ContextRollouts], env_name: str, gamma: float, extra: dict | None = None) -> None:
    """Write every context and ``meta.json`` (last, so a complete meta means complete data);
    ``extra`` adds keys to meta.json (the pipeline adds "rollout_seed" and "episode_steps")."""
    entries = []
    for i, r in enumerate(rollouts):
        name = save_context(root, i, r)
        e, t = r.arrays["state"].shape[:2]
        entries.append({"file": name, "margin": float(r.margin), "length": float(r.length), "episodes": int(e),
                        "steps": int(t), "expert_return": float(np.asarray(r.arrays["reward"]).sum((1, 2)).mean())})
    first = rollouts[0].arrays
    meta = {"format": FORMAT, "env_name": env_name, "obs_dim": int(first["state"].shape[-1]),
            "act_dim": int(first["action"].shape[-1]), "gamma": float(gamma), **(extra or {}), "contexts": entries}
    _write_json(os.path.join(root, "meta.json"), meta)


def load_meta(root: str) -> dict:
    with open(os.path.join(root, "meta.json")) as f:
        meta = json.load(f)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{root}: not a {FORMAT} dataset (format {meta.get('format')!r})")
    return meta


def load_dataset(root: str) -> tuple[dict, list[ContextRollouts]]:
    meta = load_meta(root)
    out = []
    for entry in meta["contexts"]:
        with np.load(os.path.join(root, entry["file"]), allow_pickle=False) as z:
            arrays = {k: z[k] for k in ARRAYS}
            out.append(ContextRollouts(float(z["reward_param"][0]), float(z["dynamics_param"][0]), arrays))
    return meta, out


def split_contexts(rollouts: list[ContextRollouts], input_: str, seed: int, test_fraction: float = 0.15) -> dict:
    """{"input", "seed", "test_fraction", "train": [keys], "test": [keys]} over unique keys."""
    keys = sorted({r.key(input_) for r in rollouts})
    order = np.random.default_rng(seed).permutation(len(keys))
    n_test = max(1, int(round(test_fraction * len(keys)))) if len(keys) > 1 else 0
    test = sorted(keys[i] for i in order[:n_test])
    train = sorted(keys[i] for i in order[n_test:])
    return {"input": input_, "seed": int(seed), "test_fraction": float(test_fraction),
            "train": [list(k) for k in train], "test": [list(k) for k in test]}


def split_path(root: str, input_: str, seed: int) -> str:
    return os.path.join(root, f"split-{input_}-seed-{seed}.json")


def write_split(root: str, split: dict) -> str:
    path = split_path(root, split["input"], split["seed"])
    _write_json(path, split)
    return path


def read_split(root: str, input_: str, seed: int) -> dict:
    with open(split_path(root, input_, seed)) as f:
        return json.load(f)


def select(rollouts: list[ContextRollouts], split: dict, part: str) -> list[ContextRollouts]:
    keys = {tuple(k) for k in split[part]}
    return [r for r in rollouts if r.key(split["input"]) in keys]


def flatten(rollouts: list[ContextRollouts], input_: str) -> dict[str, torch.Tensor]:
    """All (episode, step) samples as float32 tensors [N, dim], with "context" [N, context_dim]."""
    out: dict[str, list] = {k: [] for k in ARRAYS + ("context",)}
    for r in rollouts:
        n = int(np.prod(r.arrays["state"].shape[:2]))
        for k in ARRAYS:
            a = np.asarray(r.arrays[k], dtype=np.float32)
            out[k].append(a.reshape(n, a.shape[-1]))
        out["context"].append(np.tile(np.asarray(r.key(input_), dtype=np.float32), (n, 1)))
    return {k: torch.from_numpy(np.concatenate(v)) for k, v in out.items()}


def _write_json(path: str, obj) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)
