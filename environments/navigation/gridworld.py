"""GridNavi (VariBAD): find an unknown goal cell in a small grid, batched in torch.

5x5 grid, start (0,0), H=15 steps, actions noop/up/right/down/left. The goal is uniform
over all cells but the four around the start (21 goals). Reward +1 on the goal, -0.1
elsewhere, every step. ``get_belief`` returns the exact Bayes posterior over goal cells:
uniform over the allowed cells not yet visited during the current task (visits carry
over episodes of one task, since the goal stays put), one-hot once the goal was found.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from environments.base import MetaEnv
from environments.registry import ENVS

# dx, dy per action: noop, up, right, down, left
_MOVES = torch.tensor([[0, 0], [0, 1], [1, 0], [0, -1], [-1, 0]], dtype=torch.long)


@ENVS.register("GridNavi")
class GridNavi(MetaEnv):
    member_state = ("step_count", "cell", "goal_cell", "visited", "found")  # per-copy state (environments/members.py)

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", num_cells: int = 5,
                 max_episode_steps: int = 15, goal_reward: float = 1.0, step_penalty: float = -0.1):
        super().__init__(num_envs, seed, device)
        self.num_cells = num_cells
        self.max_episode_steps = max_episode_steps
        self.goal_reward, self.step_penalty = goal_reward, step_penalty
        self.observation_space = gym.spaces.Box(0, num_cells - 1, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(5)
        self.task_dim = 2
        self.num_tasks = num_cells * num_cells
        self.belief_dim = self.num_tasks
        # goals: every cell but (0,0),(0,1),(1,0),(1,1)
        xs, ys = torch.meshgrid(torch.arange(num_cells), torch.arange(num_cells), indexing="ij")
        cells = torch.stack([xs.flatten(), ys.flatten()], 1)
        self.allowed = ~((cells[:, 0] <= 1) & (cells[:, 1] <= 1))  # [num_tasks] by cell id
        self.possible_goals = cells[self.allowed].to(self.device)
        self.allowed = self.allowed.to(self.device)
        # cells are ids x * num_cells + y; one table lookup moves every copy at once
        self.xy = cells.to(self.device)                                     # [cells, 2]
        target = (cells[:, None, :] + _MOVES[None]).clamp(0, num_cells - 1)  # [cells, actions, 2]
        self.transition = (target[..., 0] * num_cells + target[..., 1]).to(self.device)
        n = self.num_envs
        self.cell = torch.zeros(n, dtype=torch.long, device=self.device)
        self.goal_cell = torch.zeros(n, dtype=torch.long, device=self.device)
        self.visited = torch.zeros(n, self.num_tasks, dtype=torch.bool, device=self.device)
        self.found = torch.zeros(n, dtype=torch.bool, device=self.device)
        self._rows = torch.arange(n, device=self.device)
        self.reset()

    @property
    def pos(self) -> torch.Tensor:
        """[N, 2] (x, y) of every copy."""
        return self.xy[self.cell]

    @property
    def goal(self) -> torch.Tensor:
        return self.xy[self.goal_cell]

    def cell_id(self, xy: torch.Tensor) -> torch.Tensor:
        """Cell index of (x, y) positions (float or long), used for multi-head decoders."""
        xy = xy[..., :2].round().long()
        return xy[..., 0] * self.num_cells + xy[..., 1]

    def task_to_id(self, tasks: torch.Tensor) -> torch.Tensor:
        return self.cell_id(tasks)  # the task is the goal cell

    def sample_tasks(self, n: int) -> torch.Tensor:
        idx = torch.randint(len(self.possible_goals), (n,), generator=self.generator)
        return self.possible_goals[idx.to(self.device)].float()

    def set_task(self, mask, tasks):
        self.goal_cell[mask] = self.cell_id(tasks)
        self.visited[mask] = False
        self.found[mask] = False
        self.cell[mask] = 0
        self._visit()

    def _reset_state(self, mask):
        self.cell[mask] = 0

    def _obs(self):
        return self.xy[self.cell].float()

    def _visit(self):
        """Record the current cell; the belief is computed from visits on demand."""
        self.visited[self._rows, self.cell] = True
        self.found |= self.cell == self.goal_cell

    def step(self, actions):
        self.cell = self.transition[self.cell, actions.reshape(-1).long()]
        at_goal = self.cell == self.goal_cell
        reward = torch.where(at_goal, self.goal_reward, self.step_penalty)
        self.visited[self._rows, self.cell] = True
        self.found |= at_goal
        truncated = self._advance_time()
        return self._obs(), reward, torch.zeros_like(truncated), truncated, {}

    def get_task(self):
        return self.xy[self.goal_cell].float()

    def get_belief(self):
        """Exact Bayes posterior over goal cells: uniform over allowed, unvisited cells;
        one-hot on the goal once it was found."""
        possible = (self.allowed[None] & ~self.visited).float()
        belief = possible / possible.sum(1, keepdim=True).clamp_min(1.0)
        onehot = torch.zeros_like(belief)
        onehot[self._rows, self.goal_cell] = 1.0
        return torch.where(self.found[:, None], onehot, belief)
