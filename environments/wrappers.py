"""A base for batched env wrappers that keep the ``MetaEnv`` contract (task pools, dream
envs): the spaces, horizon, task/belief sizes and step counter are the inner env's, and any
other attribute the wrapper does not define (``pos``, ``goal``, ``plot_rollout``, ...) is
looked up on the inner env."""
from __future__ import annotations

import torch

from environments.base import MetaEnv


class MetaEnvWrapper(MetaEnv):
    def __init__(self, inner: MetaEnv):
        # no MetaEnv.__init__: the counters and generator are the inner env's (or the subclass's)
        self.inner = inner
        self.num_envs, self.device = inner.num_envs, inner.device

    observation_space = property(lambda self: self.inner.observation_space)
    action_space = property(lambda self: self.inner.action_space)
    max_episode_steps = property(lambda self: self.inner.max_episode_steps)
    task_dim = property(lambda self: self.inner.task_dim)
    belief_dim = property(lambda self: self.inner.belief_dim)
    num_tasks = property(lambda self: self.inner.num_tasks)
    step_count = property(lambda self: self.inner.step_count)
    task_changes = property(lambda self: self.inner.task_changes)

    def __getattr__(self, name: str):
        # only reached for names the wrapper does not define
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    # the contract, passed through (a wrapper overrides what it changes)
    def step(self, actions: torch.Tensor):
        return self.inner.step(actions)

    def get_task(self) -> torch.Tensor:
        return self.inner.get_task()

    def get_belief(self) -> torch.Tensor:
        return self.inner.get_belief()

    def task_to_id(self, tasks: torch.Tensor) -> torch.Tensor:
        return self.inner.task_to_id(tasks)

    def set_task(self, mask: torch.Tensor, tasks: torch.Tensor) -> None:
        self.inner.set_task(mask, tasks)

    def close(self) -> None:
        self.inner.close()
