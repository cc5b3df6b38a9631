"""2-D point navigation of MAML (dense) and MIME (sparse rings), batched in torch.

One point mass per copy starts at the origin; the action is its velocity, clipped to
[-0.1, 0.1] per axis; the position is unbounded. Variants (registered names):

    Nav2DDense            MAML's 2DNavigation-v0: goal ~ U[-0.5, 0.5]^2, reward -||x - g||,
                          H=100, terminated when |x - g| < 0.01 on both axes.
    Nav2DWideRing         MIME's wide ring: goal = N(0, I) * 9 rejected until 5 < ||g|| < 9,
                          H=100; 16 fixed test goals (radius 5.5 and 8.5, 8 compass directions).
    Nav2DHardExploration  ring 8 < ||g|| < 9, H=100; 8 test goals at radius 8.5.
    Nav2DCloseRing        ring 5 < ||g|| < 5.5, H=300 (the "long" env); 8 test goals at 5.25.

The ring variants pay the sparse reward +1 on every step with ||x - g|| < goal_radius (1.0)
and 0 elsewhere; their dense counterpart (``sparse=False``) is -||x - g||. Every step's
info holds "pos", "success" (inside the goal radius; for Nav2DDense: the termination
condition), and for the ring variants "sparse_reward" and "dense_reward". None of the
ring variants terminates early. The reward uses the position after the move.

The reference samples ring goals by rejection (``randn * high`` until low < r < high). We
draw the same distribution in one batched call: a uniform angle and a radius from the
Rayleigh(sigma=high) law truncated to (low, high), by inverting its CDF.
"""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch

from environments.base import MetaEnv
from environments.registry import ENVS
from environments.navigation import rollout_xy

TEST_TASK_SEED = 1234  # fixed generator seed of the sampled test-task set (envs without a fixed one)


def compass_goals(radius: float) -> torch.Tensor:
    """8 goals at ``radius``: N, E, S, W, NE, SE, SW, NW (MIME's order) -> [8, 2]."""
    d = radius * math.sqrt(2) / 2
    pts = [(0, radius), (radius, 0), (0, -radius), (-radius, 0), (d, d), (d, -d), (-d, -d), (-d, d)]
    return torch.tensor(pts, dtype=torch.float32)


class Nav2D(MetaEnv):
    """Point navigation with goals in a square (``goal_sampler='square'``, U[low, high]^2) or a
    ring (``'ring'``, truncated Gaussian radius as described in the module docstring)."""

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", goal_sampler: str = "ring", low: float = 5.0,
                 high: float = 9.0, sparse: bool = True, goal_radius: float = 1.0, max_episode_steps: int = 100,
                 max_action: float = 0.1, terminate_at_goal: bool = False, fixed_test_goals: torch.Tensor | None = None,
                 num_test_tasks: int = 20):
        super().__init__(num_envs, seed, device)
        if goal_sampler not in ("square", "ring"):
            raise ValueError(f"goal_sampler must be 'square' or 'ring', got {goal_sampler!r}")
        if goal_sampler == "ring" and not 0 <= low < high:
            raise ValueError(f"a ring needs 0 <= low < high, got low={low}, high={high}")
        self.goal_sampler, self.low, self.high = goal_sampler, float(low), float(high)
        self.sparse, self.goal_radius = bool(sparse), float(goal_radius)
        self.max_episode_steps, self.max_action = int(max_episode_steps), float(max_action)
        self.terminate_at_goal = bool(terminate_at_goal)
        self.fixed_test_goals = fixed_test_goals
        self.num_test_tasks = int(num_test_tasks)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-self.max_action, self.max_action, shape=(2,), dtype=np.float32)
        self.task_dim = 2
        self.pos = torch.zeros(self.num_envs, 2, device=self.device)
        self.goal = torch.zeros(self.num_envs, 2, device=self.device)
        self.reset()

    # ----- tasks ---------------------------------------------------------------------
    def _sample_goals(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if self.goal_sampler == "square":
            u = torch.rand(n, 2, generator=generator)
            return (self.low + (self.high - self.low) * u).to(self.device)
        u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
        s2 = 2.0 * self.high ** 2                         # Rayleigh(sigma=high): F(r) = 1 - exp(-r^2 / s2)
        f_lo, f_hi = -math.expm1(-self.low ** 2 / s2), -math.expm1(-self.high ** 2 / s2)
        radius = torch.sqrt(-s2 * torch.log1p(-(f_lo + (f_hi - f_lo) * u[:, 0])))
        radius = radius.clamp(self.low, self.high)        # rounding guard only
        angle = 2 * math.pi * u[:, 1]
        return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1).float().to(self.device)

    def sample_tasks(self, n: int) -> torch.Tensor:
        return self._sample_goals(n, self.generator)

    def test_tasks(self) -> torch.Tensor:
        """The fixed evaluation goals [K, 2]: MIME's compass goals where defined, else
        ``num_test_tasks`` goals drawn from a generator seeded with TEST_TASK_SEED (the same
        set in every run, whatever the run seed)."""
        if self.fixed_test_goals is not None:
            return self.fixed_test_goals.clone().to(self.device)
        return self._sample_goals(self.num_test_tasks, torch.Generator().manual_seed(TEST_TASK_SEED))

    def set_task(self, mask, tasks):
        self.goal[mask] = tasks.float().reshape(-1, 2)

    def get_task(self):
        return self.goal.clone()

    # ----- dynamics ------------------------------------------------------------------
    def _reset_state(self, mask):
        self.pos[mask] = 0.0

    def _obs(self):
        return self.pos.clone()

    def step(self, actions):
        a = actions.reshape(self.num_envs, 2).to(self.pos).clamp(-self.max_action, self.max_action)
        self.pos = self.pos + a
        delta = self.pos - self.goal
        dist = torch.linalg.vector_norm(delta, dim=1)
        dense = -dist
        at_goal = (delta.abs() < 0.01).all(1)
        truncated = self._advance_time()
        info = {"pos": self.pos.clone()}
        if self.goal_sampler == "square" and not self.sparse:   # MAML: success = the goal itself was reached
            success = at_goal
        else:
            success = dist < self.goal_radius
            sparse = success.float()
            info["sparse_reward"], info["dense_reward"] = sparse, dense
        info["success"] = success.float()
        reward = success.float() if self.sparse else dense
        terminated = at_goal if self.terminate_at_goal else torch.zeros_like(truncated)
        return self._obs(), reward, terminated, truncated, info

    # ----- plots ---------------------------------------------------------------------
    def plot_rollout(self, rollout, path):
        """Goal (with its reward radius), the ring or square goals come from, and the path of
        every episode in its own colour."""
        from matplotlib.figure import Figure  # no pyplot: no global backend state

        pos, episode = rollout_xy(rollout)
        fig = Figure(figsize=(5, 5))
        ax = fig.subplots()
        if self.goal_sampler == "ring":
            angle = np.linspace(0, 2 * np.pi, 200)
            for r in (self.low, self.high):
                ax.plot(r * np.cos(angle), r * np.sin(angle), "k--", lw=0.6)
        else:
            lo, hi = self.low, self.high
            ax.plot([lo, hi, hi, lo, lo], [lo, lo, hi, hi, lo], "k--", lw=0.6)
        goal = np.asarray(rollout["task"]).reshape(-1)
        ax.plot(goal[0], goal[1], "kx", ms=10)
        if self.sparse or self.goal_sampler == "ring":
            ax.add_patch(_circle(goal[:2], self.goal_radius))
        for k in np.unique(episode):
            p = np.concatenate([np.zeros((1, 2)), pos[episode == k]])  # every episode starts at the origin
            ax.plot(p[:, 0], p[:, 1], "-", lw=1.2, label=f"episode {int(k) + 1}")
        ax.plot(0, 0, "ko", ms=4)
        ax.set_aspect("equal")
        ax.legend(fontsize=7)
        ax.set_title(f"return {float(np.sum(rollout['rewards'])):.1f}")
        fig.savefig(path, dpi=80, bbox_inches="tight")


def _circle(center, radius, **kwargs):
    from matplotlib.patches import Circle

    return Circle(tuple(center), radius, fill=False, color=kwargs.pop("color", "k"), **kwargs)


@ENVS.register("Nav2DDense")
class Nav2DDense(Nav2D):
    """MAML's dense 2-D navigation (goal ~ U[-0.5, 0.5]^2, reward -distance, H=100)."""

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", **kwargs):
        defaults = dict(goal_sampler="square", low=-0.5, high=0.5, sparse=False, max_episode_steps=100,
                        terminate_at_goal=True)
        super().__init__(num_envs, seed, device, **{**defaults, **kwargs})


@ENVS.register("Nav2DWideRing")
class Nav2DWideRing(Nav2D):
    """MIME's wide-ring sparse navigation (5 < ||g|| < 9, H=100, 16 test goals)."""

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", **kwargs):
        test = torch.cat([compass_goals(5.5), compass_goals(8.5)])
        defaults = dict(low=5.0, high=9.0, max_episode_steps=100, fixed_test_goals=test)
        super().__init__(num_envs, seed, device, **{**defaults, **kwargs})


@ENVS.register("Nav2DHardExploration")
class Nav2DHardExploration(Nav2D):
    """MIME's hard-exploration sparse navigation (8 < ||g|| < 9, H=100, 8 test goals at 8.5)."""

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", **kwargs):
        defaults = dict(low=8.0, high=9.0, max_episode_steps=100, fixed_test_goals=compass_goals(8.5))
        super().__init__(num_envs, seed, device, **{**defaults, **kwargs})


@ENVS.register("Nav2DCloseRing")
class Nav2DCloseRing(Nav2D):
    """MIME's close-ring sparse navigation with long episodes (5 < ||g|| < 5.5, H=300, 8 test
    goals at 5.25)."""

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", **kwargs):
        defaults = dict(low=5.0, high=5.5, max_episode_steps=300, fixed_test_goals=compass_goals(5.25))
        super().__init__(num_envs, seed, device, **{**defaults, **kwargs})
