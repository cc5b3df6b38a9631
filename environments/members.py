"""The envs of a ``--num_seeds`` run stepped as ONE batch of S x N copies.

Every seed keeps its own env (its checkpoints, evaluation and plots see a single run's env). For
a rollout, ``EnvGroup.begin`` lays the seeds' env states side by side in one env of S x N
copies (seed-major: seed k owns copies k*N .. k*N+N-1), ``step`` steps it once for all seeds and
hands each seed its rows, and ``end`` gives every seed its state back. The group draws seed k's
random numbers from seed k's own generator, in the amounts seed k's env draws them
(``MetaEnv.sample_tasks`` per seed at resets, ``MetaEnv.rand`` of the whole batch per seed), so
each seed's copies get bit for bit what its own env gives (tests/test_env_group.py).

A copy's state is declared: ``member_state``, the tensor attributes (leading size: the copies)
that stepping changes, of the env class and of the BAMDP wrapper. Other tensors are constants
(tables, index helpers, which the group has for its own size); those of the same size in the
group and a seed's env are checked to be the same in all of them and to stay so. Built for env
classes that declare their state and draw random numbers through ``sample_tasks`` and ``rand``
only; other envs, task pools and wrappers other than the BAMDP one step seed by seed, and a
start-up line says so.
"""
from __future__ import annotations

import torch

from environments.bamdp import BAMDPWrapper, build_env
from environments.base import MetaEnv


def why_not_grouped(envs: list) -> str | None:
    """None if these seeds' envs can be stepped as one group, else why not."""
    first = envs[0]
    if type(first) is not BAMDPWrapper or not isinstance(first.env, MetaEnv):
        return "not a plain BAMDP of one env"
    if type(first.env).member_state is None:
        return f"{type(first.env).__name__} does not declare its member_state"
    if any(type(e.env) is not type(first.env) or e.num_envs != first.num_envs for e in envs):
        return "the seeds' envs differ"
    return None


class EnvGroup:
    """S seeds' BAMDP envs (N copies each) stepped as one of S x N copies (see the module doc)."""

    def __init__(self, envs: list[BAMDPWrapper], cfg, device):
        why = why_not_grouped(envs)
        if why is not None:
            raise ValueError(f"cannot step these envs as one group: {why}")
        self.envs, self.S, self.N = envs, len(envs), envs[0].num_envs
        self.group = build_env(cfg, self.S * self.N, cfg.seed, device)
        self.group.env.member_generators = [e.env.generator for e in envs]
        # (group object, the seeds' objects, per-copy state, constants of the same size in both)
        self.levels = []
        for big, smalls in ((self.group, envs), (self.group.env, [e.env for e in envs])):
            tensors = {k: v for k, v in vars(smalls[0]).items() if isinstance(v, torch.Tensor)}
            state = type(big).member_state
            missing = [k for k in state if k not in tensors]
            if missing:
                raise ValueError(f"{type(big).__name__}.member_state names {missing}: not tensors of the env")
            same = [k for k, v in tensors.items() if k not in state and getattr(big, k).shape == v.shape]
            self.levels.append((big, smalls, state, same))

    def begin(self) -> None:
        """The seeds' env states into the group (before a rollout)."""
        for big, smalls, state, same in self.levels:
            for name in state:
                setattr(big, name, torch.cat([getattr(s, name) for s in smalls]))
            for name in same:
                value = getattr(smalls[0], name)
                if any(not torch.equal(getattr(s, name), value) for s in smalls[1:]):
                    raise RuntimeError(f"{type(big).__name__}.{name} differs between the seeds' envs: it is state, "
                                       "so it belongs in member_state")
        g, first = self.group, self.envs[0]
        g.record_task, g.record_belief = first.record_task, first.record_belief

    def step(self, actions: torch.Tensor) -> list[tuple]:
        """One step of all seeds' copies (``actions`` [S, N, ...]); per seed (obs, reward, done,
        info, any_done) of its rows, as its own env's ``step`` and ``any_done`` give them."""
        S, N = self.S, self.N
        obs, reward, done, info = self.group.step(actions.reshape(S * N, *actions.shape[2:]))
        any_done = done.view(S, N).any(1).tolist() if self.group.any_done else [False] * S

        def per_seed(x):  # each seed's rows (views), or the same value for every seed
            return x.split(N) if isinstance(x, torch.Tensor) and x.dim() and x.shape[0] == S * N else [x] * S
        obs, reward, done = per_seed(obs), per_seed(reward), per_seed(done)
        info = {name: per_seed(v) for name, v in info.items()}
        return [(obs[k], reward[k], done[k], {name: v[k] for name, v in info.items()}, any_done[k]) for k in range(S)]

    def end(self) -> None:
        """Every seed's env state back from the group (after a rollout)."""
        for big, smalls, state, same in self.levels:
            for name in state:
                value = getattr(big, name)
                for k, s in enumerate(smalls):
                    setattr(s, name, value[k * self.N:(k + 1) * self.N].clone())
            for name in same:
                if not torch.equal(getattr(big, name), getattr(smalls[0], name)):
                    raise RuntimeError(f"{type(big).__name__}.{name} changed during the rollout: it is state, so it "
                                       "belongs in member_state")
