"""GridNavi variants (Beck et al. 2022/2023 experiment sets), by subclassing GridNavi.

GridNavi-dense: reward = goal_reward on the goal, else step_penalty - distance_scale * the
    Manhattan distance to the goal normalised by its maximum (2 (n-1)), so the reward rises
    as the agent gets closer (distance_scale 0.1 by default: in [-0.2, -0.1) off-goal).
GridNavi-showgoal: the goal (x, y) is appended to the observation at the first step of each
    episode only (after reset / reset_mdp); afterwards those two entries are -1.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from environments.navigation.gridworld import GridNavi
from environments.registry import ENVS


@ENVS.register("GridNavi-dense")
class GridNaviDense(GridNavi):
    def __init__(self, num_envs: int, seed: int = 0, device="cpu", distance_scale: float = 0.1, **kw):
        self.distance_scale = distance_scale
        super().__init__(num_envs, seed, device, **kw)

    def step(self, actions):
        obs, _, terminated, truncated, info = super().step(actions)
        dist = (self.pos - self.goal).abs().sum(1).float()
        at_goal = dist == 0
        off = self.step_penalty - self.distance_scale * dist / (2 * (self.num_cells - 1))
        reward = torch.where(at_goal, torch.full_like(dist, self.goal_reward), off)
        info = dict(info)
        info["sparse_reward"] = torch.where(at_goal, self.goal_reward, self.step_penalty).float()
        info["dense_reward"] = reward
        return obs, reward, terminated, truncated, info


@ENVS.register("GridNavi-showgoal")
class GridNaviShowGoal(GridNavi):
    def __init__(self, num_envs: int, seed: int = 0, device="cpu", **kw):
        super().__init__(num_envs, seed, device, **kw)
        n = self.num_cells
        low = np.array([0, 0, -1, -1], dtype=np.float32)
        self.observation_space = gym.spaces.Box(low, float(n - 1), shape=(4,), dtype=np.float32)

    def _obs(self):
        show = (self.step_count == 0).unsqueeze(1)
        goal = torch.where(show, self.goal.float(), torch.full_like(self.goal, -1).float())
        return torch.cat([self.pos.float(), goal], 1)
