"""TreasureHunt (HyperX), batched in torch.

A 2-D point agent starts at (0, -1) at the foot of a "mountain" centred on the origin. The
treasure lies somewhere on the unit circle (angle ~ U(0, 2pi)). Only the very top of the
mountain (||s|| < 0.1) reveals where the treasure is: there the observation is
(x, y, goal_x, goal_y), everywhere else (x, y, 0, 0).

Dynamics: s <- clip(s + 0.1 * clip(a, -1, 1), -1.5, 1.5), H = 100 steps.
Reward per step (first matching case, as in the reference):
    on the mountain, ||s|| <= 0.5:     mountain_height * (||s|| - 0.5) + timestep_penalty
    within 0.1 of the treasure:        treasure_reward   (paid on every step spent there)
    elsewhere:                         timestep_penalty * max(1, ||s||)
Defaults are those of the registered reference env (mountain_height=1, treasure_reward=10,
timestep_penalty=-5). info: "pos" [N, 2] and "success" [N] (1.0 on steps spent within 0.1
of the treasure).
"""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch

from environments.base import MetaEnv
from environments.registry import ENVS


@ENVS.register("TreasureHunt")
class TreasureHunt(MetaEnv):
    member_state = ("step_count", "pos", "goal")  # per-copy state (environments/members.py)

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", max_episode_steps: int = 100,
                 mountain_height: float = 1.0, treasure_reward: float = 10.0,
                 timestep_penalty: float = -5.0):
        super().__init__(num_envs, seed, device)
        self.max_episode_steps = max_episode_steps
        self.mountain_height = mountain_height
        self.treasure_reward = treasure_reward
        self.timestep_penalty = timestep_penalty
        # layout (the reference hard-codes these radii too)
        self.goal_radius = 1.0        # treasures lie on this circle
        self.mountain_radius = 0.5    # reward slope region
        self.peak_radius = 0.1        # observation reveals the goal within this distance of 0
        self.treasure_radius = 0.1    # treasure reward within this distance of the goal
        self.bound = 1.5
        self.start = torch.tensor([0.0, -1.0], device=self.device)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.task_dim = 2
        self.pos = torch.zeros(self.num_envs, 2, device=self.device)
        self.goal = torch.zeros(self.num_envs, 2, device=self.device)
        self.reset()

    def sample_tasks(self, n: int) -> torch.Tensor:
        angle = self.rand(n) * 2 * math.pi
        return self.goal_radius * torch.stack([torch.cos(angle), torch.sin(angle)], 1)

    def set_task(self, mask, tasks):
        self.goal[mask] = tasks.float()

    def _reset_state(self, mask):
        # a new tensor, never an in-place write: step hands ``self.pos`` out as info["pos"] uncopied
        self.pos = torch.where(mask[:, None], self.start, self.pos)

    def _obs(self, d_top: torch.Tensor | None = None):
        """d_top: ||pos|| if the caller has it already (step computes it for the reward)."""
        if d_top is None:
            d_top = torch.linalg.vector_norm(self.pos, dim=1)
        shown = torch.where((d_top < self.peak_radius)[:, None], self.goal, 0.0)
        return torch.cat([self.pos, shown], 1)

    def _reward(self):
        d_top = torch.linalg.vector_norm(self.pos, dim=1)
        d_goal = torch.linalg.vector_norm(self.pos - self.goal, dim=1)
        on_mountain = d_top <= self.mountain_radius
        at_treasure = (d_goal <= self.treasure_radius) & ~on_mountain
        slope = d_top - self.mountain_radius
        if self.mountain_height != 1.0:  # x * 1.0 == x exactly: the multiply is skipped at the default
            slope = self.mountain_height * slope
        mountain = slope + self.timestep_penalty
        elsewhere = self.timestep_penalty * d_top.clamp_min(1.0)
        reward = torch.where(on_mountain, mountain, torch.where(at_treasure, self.treasure_reward, elsewhere))
        return reward, at_treasure, d_top

    def step(self, actions):
        actions = actions.reshape(self.num_envs, 2).float().clamp(-1.0, 1.0)
        self.pos = (self.pos + 0.1 * actions).clamp(-self.bound, self.bound)
        reward, at_treasure, d_top = self._reward()
        truncated = self._advance_time()
        info = {"pos": self.pos, "success": at_treasure.float()}  # self.pos is replaced, never written in place
        return self._obs(d_top), reward, torch.zeros_like(truncated), truncated, info

    def get_task(self):
        return self.goal.clone()

    def plot_rollout(self, rollout, path):
        """Mountain, treasure circle, goal and the agent's path (coloured by bonus if given)."""
        from matplotlib.figure import Figure  # no pyplot: no global backend state

        pos = rollout.get("pos")
        pos = np.asarray(pos if pos is not None else rollout["obs"][:, :2])
        fig = Figure(figsize=(5, 5))
        ax = fig.subplots()
        angle = np.linspace(0, 2 * np.pi, 100)
        for r in np.linspace(self.peak_radius, self.mountain_radius, 5):
            ax.plot(r * np.cos(angle), r * np.sin(angle), color="tan", lw=1)
        ax.plot(np.cos(angle), np.sin(angle), "--", color="limegreen", lw=6, alpha=0.3)
        goal = np.asarray(rollout["task"])
        ax.plot(goal[0], goal[1], "x", color="black", markersize=14, markeredgewidth=3)
        ax.plot(pos[:, 0], pos[:, 1], "-", color="royalblue", alpha=0.4, lw=2)
        bonus = rollout.get("bonus")
        if bonus is not None:  # bonus[t] belongs to the state after step t, i.e. pos[t+1]
            bonus = np.asarray(bonus).reshape(-1)
            after = pos[len(pos) - len(bonus):]
            sc = ax.scatter(after[:, 0], after[:, 1], c=bonus, cmap="viridis", s=12, zorder=3)
            fig.colorbar(sc, ax=ax, label="bonus")
        else:
            ax.plot(pos[:, 0], pos[:, 1], ".", color="blue", markersize=6)
        ax.set_xlim(-self.bound, self.bound)
        ax.set_ylim(-self.bound, self.bound)
        ax.set_aspect("equal")
        ax.set_title(f"return {float(np.sum(rollout['rewards'])):.1f}")
        fig.savefig(path, dpi=100, bbox_inches="tight")
