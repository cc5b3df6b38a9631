"""Memory & Planning Game (Ritter et al. 2021), batched in torch.

A toroidal ``grid_size`` x ``grid_size`` grid whose cells carry random labels (a permutation
of 0..n^2-1, drawn per task). Actions: 0 Up, 1 Down, 2 Left, 3 Right, 4 Collect. Collect on
the goal cell gives ``target_reward`` (+1) and draws a new goal label (never the current
cell); the agent stays where it is. Episodes last ``max_episode_steps`` (100) steps; the agent starts
on a random cell with a random goal (different from the start). Use one episode per task
(max_rollouts_per_task=1) and no entropy bonus.

Observation: one-hot label of the current cell + one-hot goal label (2 n^2).
``PlanningGame-justgoal``: observation = [at goal] (1 bit).
Task: the labels of the cells, row-major over (x, y) ([n^2] floats); ``label`` of cell
(x, y) is task[x * n + y].
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from environments.base import MetaEnv
from environments.registry import ENVS

# dx, dy per action: Up, Down, Left, Right, Collect
_DIRS = torch.tensor([[0, 1], [0, -1], [-1, 0], [1, 0], [0, 0]], dtype=torch.long)
COLLECT = 4


@ENVS.register("PlanningGame")
class PlanningGame(MetaEnv):
    def __init__(self, num_envs: int, seed: int = 0, device="cpu", grid_size: int = 3, max_episode_steps: int = 100,
                 target_reward: float = 1.0, per_step_reward: float = 0.0, just_goal: bool = False):
        super().__init__(num_envs, seed, device)
        self.n = grid_size
        self.num_labels = grid_size * grid_size
        self.max_episode_steps = max_episode_steps
        self.target_reward, self.per_step_reward = target_reward, per_step_reward
        self.just_goal = just_goal
        dim = 1 if just_goal else 2 * self.num_labels
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(dim,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(5)
        self.task_dim = self.num_labels
        self.dirs = _DIRS.to(self.device)
        n = self.num_envs
        self.labels = torch.arange(self.num_labels, device=self.device).repeat(n, 1)  # [N, n^2] label per cell
        self.pos = torch.zeros(n, 2, dtype=torch.long, device=self.device)
        self.goal = torch.zeros(n, dtype=torch.long, device=self.device)  # goal cell index
        self.reset()

    def cell(self, xy):
        return xy[:, 0] * self.n + xy[:, 1]

    def sample_tasks(self, n: int) -> torch.Tensor:
        return torch.argsort(torch.rand(n, self.num_labels, generator=self.generator), 1).float().to(self.device)

    def set_task(self, mask, tasks):
        self.labels[mask] = tasks.round().long()

    def get_task(self):
        return self.labels.float()

    def _random_other_cell(self, cur):
        """A uniformly random cell index != cur [N]."""
        off = (self.rand(self.num_envs) * (self.num_labels - 1)).long().clamp_max(self.num_labels - 2) + 1
        return (cur + off) % self.num_labels

    def _reset_state(self, mask):
        c = (self.rand(self.num_envs) * self.num_labels).long().clamp_max(self.num_labels - 1)
        xy = torch.stack([c // self.n, c % self.n], 1)
        self.pos = torch.where(mask[:, None], xy, self.pos)
        self.goal = torch.where(mask, self._random_other_cell(self.cell(self.pos)), self.goal)

    def _obs(self):
        rows = torch.arange(self.num_envs, device=self.device)
        cur = self.cell(self.pos)
        if self.just_goal:
            return (cur == self.goal).float().unsqueeze(1)
        obs = torch.zeros(self.num_envs, 2 * self.num_labels, device=self.device)
        obs[rows, self.labels[rows, cur]] = 1.0
        obs[rows, self.num_labels + self.labels[rows, self.goal]] = 1.0
        return obs

    def step(self, actions):
        a = actions.reshape(-1).long().to(self.device)
        self.pos = (self.pos + self.dirs[a]) % self.n
        cur = self.cell(self.pos)
        hit = (a == COLLECT) & (cur == self.goal)
        reward = torch.where(hit, self.target_reward, self.per_step_reward).float()
        self.goal = torch.where(hit, self._random_other_cell(cur), self.goal)
        truncated = self._advance_time()
        info = {"success": hit.float(), "pos": self.pos.float()}
        return self._obs(), reward, torch.zeros_like(truncated), truncated, info

    def goal_label(self):
        rows = torch.arange(self.num_envs, device=self.device)
        return self.labels[rows, self.goal]


@ENVS.register("PlanningGame-justgoal")
class PlanningGameJustGoal(PlanningGame):
    def __init__(self, num_envs: int, seed: int = 0, device="cpu", **kw):
        kw.setdefault("just_goal", True)
        super().__init__(num_envs, seed, device, **kw)
