"""ImageMaze: a procedurally generated room maze with low-resolution image observations, in
the spirit of AMRL's Minecraft maze (MC-LS), batched in torch.

Layout (top-down, per task): a chain of ``num_rooms`` + 1 rooms, each one row of ``lanes``
cells, separated by wall rows with a single door at a random lane (drawn per task, so the
maze is the same for every episode of a task). The start room (row 0) has a coloured floor:
green = the LEFT exit is correct, red = the RIGHT exit is correct. The last room has an exit
at each side; walking into one ends the episode with ``success_reward`` (4) or
``fail_reward`` (-3). Entering a new room gives ``progress_reward`` (0.1). Episodes time out
after ``max_episode_steps`` (200) steps.

Actions (Discrete(3)): 0 step left, 1 step forward, 2 step right (blocked by walls).

Observation: an RGB view (3 x 2*view x 2*view, default 3 x 10 x 10, 2x2 pixels per cell) of
the view x view cells around the agent (forward is up; the agent is the white centre cell),
flattened channel-first, values in [0, 1]; ``noise`` adds Gaussian pixel noise drawn from
the env generator. The indicator is visible only while the agent is within view//2 rows of
the start room, so the agent must remember it.

Task: [side (0 left, 1 right), door lane of each wall (num_rooms)].
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from environments.base import MetaEnv
from environments.registry import ENVS

FLOOR, WALL, GREEN, RED, EXIT, AGENT = range(6)
PALETTE = torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0],
                        [1.0, 1.0, 1.0]])
_MOVES = torch.tensor([[0, -1], [1, 0], [0, 1]], dtype=torch.long)  # (d row, d col): left, forward, right


@ENVS.register("ImageMaze")
class ImageMaze(MetaEnv):
    def __init__(self, num_envs: int, seed: int = 0, device="cpu", num_rooms: int = 16, lanes: int = 3,
                 view: int = 5, pixels_per_cell: int = 2, max_episode_steps: int = 200, success_reward: float = 4.0,
                 fail_reward: float = -3.0, progress_reward: float = 0.1, noise: float | None = None):
        super().__init__(num_envs, seed, device)
        if view % 2 == 0:
            raise ValueError(f"view must be odd, got {view}")
        self.R, self.W, self.view, self.ppc = num_rooms, lanes, view, pixels_per_cell
        self.H, self.Wd = 2 * num_rooms + 1, lanes + 2
        self.max_episode_steps = max_episode_steps
        self.success_reward, self.fail_reward, self.progress_reward = success_reward, fail_reward, progress_reward
        self.noise = noise
        self.img_shape = (3, view * pixels_per_cell, view * pixels_per_cell)
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(int(np.prod(self.img_shape)),), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(3)
        self.task_dim = 1 + num_rooms
        self.palette = PALETTE.to(self.device)
        self.moves = _MOVES.to(self.device)
        n = self.num_envs
        self.task = torch.zeros(n, self.task_dim, device=self.device)
        self.maps = torch.zeros(n, self.H, self.Wd, dtype=torch.long, device=self.device)
        self.pos = torch.zeros(n, 2, dtype=torch.long, device=self.device)
        self.done = torch.zeros(n, dtype=torch.bool, device=self.device)
        self.reset()

    def sample_tasks(self, n: int) -> torch.Tensor:
        side = (self.rand(n, 1) < 0.5).float()
        doors = (self.rand(n, self.R) * self.W).long().clamp_max(self.W - 1).float()
        return torch.cat([side, doors], 1)

    def set_task(self, mask, tasks):
        self.task[mask] = tasks.round().float()
        self.maps = torch.where(mask[:, None, None], self._build_maps(self.task), self.maps)

    def _build_maps(self, task):
        n = task.shape[0]
        m = torch.zeros(n, self.H, self.Wd, dtype=torch.long, device=self.device)
        m[:, :, 0] = WALL
        m[:, :, -1] = WALL
        m[:, 1::2, :] = WALL
        if self.R > 0:
            doors = task[:, 1:].long() + 1  # column of the door in wall row 2k-1, k = 1..R
            wall_rows = torch.arange(1, self.H, 2, device=self.device)
            rows = torch.arange(n, device=self.device)[:, None].expand(n, self.R)
            m[rows, wall_rows[None].expand(n, -1), doors] = FLOOR
        colour = torch.where(task[:, 0] > 0.5, RED, GREEN)
        m[:, 0, 1:-1] = colour[:, None]
        m[:, -1, 0] = EXIT
        m[:, -1, -1] = EXIT
        return m

    def get_task(self):
        return self.task.clone()

    def _reset_state(self, mask):
        start = torch.tensor([0, 1 + self.W // 2], device=self.device)
        self.pos = torch.where(mask[:, None], start, self.pos)
        self.done[mask] = False

    def render_cells(self):
        """[N, view, view] cell types around the agent (row 0 = furthest forward)."""
        h = self.view // 2
        padded = F.pad(self.maps, (h, h, h, h), value=WALL)
        ar = torch.arange(-h, h + 1, device=self.device)
        rows = (self.pos[:, 0:1] + h + ar).flip(1)  # forward is up
        cols = self.pos[:, 1:2] + h + ar
        n = torch.arange(self.num_envs, device=self.device)
        cells = padded[n[:, None, None], rows[:, :, None], cols[:, None, :]]
        cells[:, h, h] = AGENT
        return cells

    def _obs(self):
        img = self.palette[self.render_cells()]  # [N, v, v, 3]
        img = img.permute(0, 3, 1, 2).repeat_interleave(self.ppc, 2).repeat_interleave(self.ppc, 3)
        if self.noise:
            img = (img + self.noise * torch.randn(img.shape, generator=self.generator).to(self.device)).clamp(0, 1)
        return img.reshape(self.num_envs, -1)

    def step(self, actions):
        a = actions.reshape(-1).long().to(self.device)
        active = ~self.done
        target = self.pos + self.moves[a]
        off = target[:, 0] >= self.H
        n = torch.arange(self.num_envs, device=self.device)
        ttype = self.maps[n, target[:, 0].clamp_max(self.H - 1), target[:, 1]]
        blocked = off | (ttype == WALL)
        exit_ = ~off & (ttype == EXIT) & active
        success = exit_ & ((target[:, 1] == 0) == (self.task[:, 0] < 0.5))
        move = ~blocked & ~exit_ & active
        new_room = move & (a == 1) & (target[:, 0] % 2 == 0)
        self.pos = torch.where(move[:, None], target, self.pos)
        reward = torch.where(new_room, self.progress_reward, 0.0)
        reward = reward + torch.where(exit_, torch.where(success, self.success_reward, self.fail_reward), 0.0)
        truncated = self._advance_time()
        terminated = exit_
        self.done = self.done | terminated | truncated
        info = {"success": success.float(), "pos": self.pos.float()}
        return self._obs(), reward.float(), terminated, truncated, info
