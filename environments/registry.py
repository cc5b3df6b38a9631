"""Env registry: ``make_env('GridNavi', num_envs=16, seed=0)``.

Env modules register themselves with ``@ENVS.register("Name")``; importing
``environments`` imports them all. Kwargs given to make_env go to the env constructor.
"""
from __future__ import annotations

from utils.registry import Registry

ENVS: Registry = Registry("environment")


def make_env(name: str, num_envs: int, seed: int = 0, device="cpu", **kwargs):
    import environments  # noqa: F401  (registers all envs)

    return ENVS.get(name)(num_envs=num_envs, seed=seed, device=device, **kwargs)
