"""2-D point robots (VariBAD / HyperX), batched in torch.

PointEnv: s <- s + 0.1 * clip(a, -1, 1), start (0, 0), H=100, goal on the unit semicircle
(angle ~ U(0, pi)), dense reward -||s - g||.
SparsePointEnv: same dynamics; reward 0 outside ``goal_radius`` (0.2) and dense + 1 inside
(so in (0.8, 1]). info carries "sparse_reward", "dense_reward" and "success" (inside radius).
"""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch

from environments.base import MetaEnv
from environments.registry import ENVS


@ENVS.register("PointEnv")
class PointEnv(MetaEnv):
    member_state = ("step_count", "pos", "goal")  # per-copy state (environments/members.py)

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", max_episode_steps: int = 100,
                 goal_sampler: str = "semi-circle"):
        super().__init__(num_envs, seed, device)
        if goal_sampler not in ("semi-circle", "circle"):
            raise ValueError(f"goal_sampler must be 'semi-circle' or 'circle', got {goal_sampler!r}")
        self.goal_sampler = goal_sampler
        self.max_episode_steps = max_episode_steps
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.task_dim = 2
        self.pos = torch.zeros(self.num_envs, 2, device=self.device)
        self.goal = torch.zeros(self.num_envs, 2, device=self.device)
        self.reset()

    def sample_tasks(self, n: int) -> torch.Tensor:
        top = math.pi if self.goal_sampler == "semi-circle" else 2 * math.pi
        angle = self.rand(n) * top
        return torch.stack([torch.cos(angle), torch.sin(angle)], 1)

    def set_task(self, mask, tasks):
        self.goal[mask] = tasks.float()

    def _reset_state(self, mask):
        self.pos[mask] = 0.0

    def _obs(self):
        return self.pos.clone()

    def _move(self, actions):
        self.pos = self.pos + 0.1 * actions.reshape(self.num_envs, 2).clamp(-1.0, 1.0)
        return -torch.linalg.vector_norm(self.pos - self.goal, dim=1)

    def step(self, actions):
        reward = self._move(actions)
        truncated = self._advance_time()
        info = {"pos": self.pos.clone()}
        return self._obs(), reward, torch.zeros_like(truncated), truncated, info

    def get_task(self):
        return self.goal.clone()

    def oracle_action(self) -> torch.Tensor:
        """An expert that knows the goal: straight to it at full speed, then stay (ReId's scripted
        trajectories for fitting the dream density on training tasks)."""
        return ((self.goal - self.pos) / 0.1).clamp(-1.0, 1.0)

    def plot_rollout(self, rollout, path):
        from utils.plotting import plot_point_rollout

        plot_point_rollout(rollout, path, goal_radius=getattr(self, "goal_radius", None),
                           full_circle=self.goal_sampler == "circle")


@ENVS.register("SparsePointEnv")
class SparsePointEnv(PointEnv):
    def __init__(self, num_envs: int, seed: int = 0, device="cpu", goal_radius: float = 0.2, **kwargs):
        self.goal_radius = goal_radius
        super().__init__(num_envs, seed, device, **kwargs)

    def step(self, actions):
        dense = self._move(actions)
        inside = -dense <= self.goal_radius
        sparse = torch.where(inside, dense + 1.0, torch.zeros_like(dense))
        truncated = self._advance_time()
        info = {"pos": self.pos.clone(), "sparse_reward": sparse, "dense_reward": dense,
                "success": inside.float()}
        return self._obs(), sparse, torch.zeros_like(truncated), truncated, info
