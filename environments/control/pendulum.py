"""Meta-pendulum (MIME's MetaPendulum-v0): swing up pendulums of different mass and length.

Batched in torch. A task is (mass m, length l). The dynamics are gymnasium's Pendulum with
those m and l (g=10, torque clipped to +-2), with MIME's constants dt=0.1 and max speed 20
(gymnasium uses 0.05 and 8; both are kwargs):

    thdot' = clip(thdot + (3 g / (2 l) sin th + 3 / (m l^2) u) dt, -max_speed, max_speed)
    th'    = th + thdot' dt

Like gymnasium (and unlike MIME, written for old gym) the angle integrates the *clipped*
speed; the two only differ on steps where the speed would exceed max_speed.
Observation (cos th, sin th, thdot); start hanging down: th ~ U[3, 3.28], thdot ~ U[-0.01, 0.01]
(drawn from the env's generator). H = 50, no early termination.

Rewards, from the tip's distance to upright d = sqrt(2 l^2 (1 - cos th)), computed as the
equal but float32-safe 2 l |sin(th / 2)|:
    "dense"  (MetaPendulum)        -d
    "sparse" (MetaPendulumSparse)  1 if d < 0.0005 l else 0
    "cost"                         gymnasium's -(angle_normalize(th)^2 + 0.1 thdot^2 + 0.001 u^2)
                                   on the state before the step (for comparisons)
info: "success" (d < 0.0005 l), "sparse_reward", "dense_reward", "tip_distance".
MIME's trajectory-level success (the last 10 states with d < 5e-5) is ``solved_from_obs``.

Tasks: training pairs TRAIN_PAIRS, drawn uniformly from ALL six. MIME's sampler used
``randint(0, len - 1)`` (exclusive upper bound) and so never drew the last pair (0.7, 0.7);
that off-by-one is not reproduced here. ``test_tasks()`` returns the four held-out pairs
TEST_PAIRS once each (MIME drew four of them with replacement from Python's global RNG).
"""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch

from environments.base import MetaEnv
from environments.registry import ENVS

TRAIN_PAIRS = ((0.5, 0.4), (0.5, 0.5), (0.5, 0.7), (0.7, 0.4), (0.7, 0.5), (0.7, 0.7))
TEST_PAIRS = ((0.6, 0.6), (0.6, 0.8), (0.8, 0.6), (0.8, 0.8))
SUCCESS_FRACTION = 0.0005   # per-step success: tip distance < 0.0005 * l
SOLVED_DISTANCE = 5e-5      # trajectory success: the last SOLVED_STEPS tip distances below this
SOLVED_STEPS = 10


def angle_normalize(x: torch.Tensor) -> torch.Tensor:
    """Angle wrapped into [-pi, pi)."""
    return torch.remainder(x + math.pi, 2 * math.pi) - math.pi


def tip_distance(theta: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Distance of the tip to the upright position, sqrt(2 l^2 (1 - cos th)) = 2 l |sin(th/2)|."""
    return 2.0 * length * torch.sin(theta / 2).abs()


def solved_from_obs(obs: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """MIME's trajectory success: obs [T, ..., 3] (one episode), length [...] -> bool [...]:
    the last 10 observed states all have tip distance < 5e-5."""
    theta = torch.atan2(obs[-SOLVED_STEPS:, ..., 1], obs[-SOLVED_STEPS:, ..., 0])
    return (tip_distance(theta, length) < SOLVED_DISTANCE).all(0)


@ENVS.register("MetaPendulum")
class MetaPendulum(MetaEnv):
    def __init__(self, num_envs: int, seed: int = 0, device="cpu", reward: str = "dense", dt: float = 0.1,
                 max_speed: float = 20.0, max_torque: float = 2.0, g: float = 10.0, max_episode_steps: int = 50):
        super().__init__(num_envs, seed, device)
        if reward not in ("dense", "sparse", "cost"):
            raise ValueError(f"reward must be 'dense', 'sparse' or 'cost', got {reward!r}")
        self.reward_type, self.dt, self.max_speed = reward, float(dt), float(max_speed)
        self.max_torque, self.g, self.max_episode_steps = float(max_torque), float(g), int(max_episode_steps)
        high = np.array([1.0, 1.0, self.max_speed], dtype=np.float32)
        self.observation_space = gym.spaces.Box(-high, high, dtype=np.float32)
        self.action_space = gym.spaces.Box(-self.max_torque, self.max_torque, shape=(1,), dtype=np.float32)
        self.task_dim = 2
        n = self.num_envs
        self.mass = torch.ones(n, device=self.device)
        self.length = torch.ones(n, device=self.device)
        self.theta = torch.zeros(n, device=self.device)
        self.theta_dot = torch.zeros(n, device=self.device)
        self.reset()

    # ----- tasks ---------------------------------------------------------------------
    @staticmethod
    def train_tasks() -> torch.Tensor:
        """The six training (m, l) pairs -> [6, 2]."""
        return torch.tensor(TRAIN_PAIRS, dtype=torch.float32)

    def sample_tasks(self, n: int) -> torch.Tensor:
        idx = torch.randint(len(TRAIN_PAIRS), (n,), generator=self.generator)  # upper bound exclusive: all 6
        return self.train_tasks()[idx].to(self.device)

    def test_tasks(self) -> torch.Tensor:
        """The four held-out (m, l) pairs -> [4, 2]."""
        return torch.tensor(TEST_PAIRS, dtype=torch.float32, device=self.device)

    def set_task(self, mask, tasks):
        tasks = tasks.float().reshape(-1, 2)
        self.mass[mask], self.length[mask] = tasks[:, 0], tasks[:, 1]

    def get_task(self):
        return torch.stack([self.mass, self.length], 1)

    # ----- dynamics ------------------------------------------------------------------
    def _reset_state(self, mask):
        k = int(mask.sum())
        u = self.rand(k, 2)
        self.theta[mask] = 3.0 + 0.28 * u[:, 0]
        self.theta_dot[mask] = -0.01 + 0.02 * u[:, 1]

    def _obs(self):
        return torch.stack([torch.cos(self.theta), torch.sin(self.theta), self.theta_dot], 1)

    def set_state(self, theta: torch.Tensor, theta_dot: torch.Tensor) -> None:
        """Place every copy at (theta, theta_dot) [N] (tests, scripted evaluation)."""
        self.theta = torch.as_tensor(theta, dtype=torch.float32, device=self.device).reshape(self.num_envs).clone()
        self.theta_dot = torch.as_tensor(theta_dot, dtype=torch.float32, device=self.device).reshape(self.num_envs).clone()

    def step(self, actions):
        u = actions.reshape(self.num_envs, -1)[:, 0].to(self.theta).clamp(-self.max_torque, self.max_torque)
        th, thdot, m, l = self.theta, self.theta_dot, self.mass, self.length
        cost = angle_normalize(th) ** 2 + 0.1 * thdot ** 2 + 0.001 * u ** 2
        new_thdot = thdot + (3 * self.g / (2 * l) * torch.sin(th) + 3.0 / (m * l ** 2) * u) * self.dt
        new_thdot = new_thdot.clamp(-self.max_speed, self.max_speed)
        self.theta, self.theta_dot = th + new_thdot * self.dt, new_thdot
        dist = tip_distance(self.theta, l)
        success = (dist < SUCCESS_FRACTION * l).float()
        reward = {"dense": -dist, "sparse": success, "cost": -cost}[self.reward_type]
        truncated = self._advance_time()
        info = {"success": success, "sparse_reward": success, "dense_reward": -dist, "tip_distance": dist}
        return self._obs(), reward, torch.zeros_like(truncated), truncated, info


@ENVS.register("MetaPendulumSparse")
class MetaPendulumSparse(MetaPendulum):
    """The meta-pendulum with the sparse reward (1 iff the tip is within 0.0005 l of upright)."""

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", **kwargs):
        super().__init__(num_envs, seed, device, **{"reward": "sparse", **kwargs})
