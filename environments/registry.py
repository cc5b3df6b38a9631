"""Env registry: ``make_env('GridNavi', num_envs=16, seed=0)``.

Env modules register themselves with ``@ENVS.register("Name")``; importing
``environments`` imports them all. Kwargs given to make_env go to the env constructor.

An env registered from outside this package (a user's own task) is checked against the batched
env contract (``environments.checker.check_env``) the first time it is made in a process, so a
broken env fails with a message saying what is wrong rather than deep inside training.
"""
from __future__ import annotations

from utils.registry import Registry

ENVS: Registry = Registry("environment")


_CHECKED: set[str] = set()


def make_env(name: str, num_envs: int, seed: int = 0, device="cpu", **kwargs):
    import environments  # noqa: F401  (registers all envs)

    factory = ENVS.get(name)
    if name not in _CHECKED and not getattr(factory, "__module__", "").startswith("environments."):
        from environments.checker import check_env

        check_env(factory, num_envs=2, seed=seed, device=device, **kwargs)
    _CHECKED.add(name)
    return factory(num_envs=num_envs, seed=seed, device=device, **kwargs)
