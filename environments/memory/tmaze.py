"""T-Maze family (AMRL, Beck et al. 2020), batched in torch.

A corridor of ``maze_length`` cells (0 .. L-1); the T-junction is the last cell L-1. At the
junction UP/DOWN ends the episode with ``success_reward`` (right arm) or ``fail_reward``.
Actions: 0 LEFT, 1 RIGHT, 2 UP, 3 DOWN.

Observation (4 floats): [at start (pos 0), indicator (+1 up / -1 down / 0 none), at junction,
intermediate indicator (+1/-1; 0 if ``noise=False``)]. The intermediate indicator ("check")
is redrawn at every step (P(up)=0.5, or task-dependent with ``latent_p``).

Task: [ind] with ind in {0 (down), 1 (up)}, or [ind, ind2] with a second indicator
(``agree_pos``). Correct arm: up iff ind == 1; with a second indicator: up iff they agree.

Options (AMRL names in brackets):
    indicator_pos   cell showing the indicator (None: never shown, e.g. T-latent)
    agree_pos       cell showing the second indicator [agreement_indicator_pos]
    latent_p        (p_up if task up, p_up if task down) for the checks [latent_dist]
    force_right     in the corridor every action moves right [force_right]
    force_final_decision  at the junction LEFT->UP, RIGHT->DOWN
    intermediate_checks   RIGHT does not move; in the corridor UP/DOWN equal to the
                    current check moves right and gives ``check_reward`` [intermediate_checks]
    allow_left      LEFT moves left (else no-op)
    max_episode_steps  episode length (truncation); ``timeout_reward`` is added on the last step
                    when the episode times out.

Registered: TMaze (= TMaze-LN), TMaze-LN (indicator at 0, forced right, noise),
TMaze-LN-P1 (indicator at 1), TMaze-Agree (indicators at 1 and 50), TMaze-Latent (no
indicator, checks up with p=0.7 if the task is up, 0.5 if down), TMaze-LS (indicator at 1,
intermediate checks with reward 0.1, not forced right, no forced final decision).
Finished copies stay finished (reward 0, frozen) until reset / reset_mdp.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from environments.base import MetaEnv
from environments.registry import ENVS

LEFT, RIGHT, UP, DOWN = 0, 1, 2, 3


@ENVS.register("TMaze")
class TMaze(MetaEnv):
    def __init__(self, num_envs: int, seed: int = 0, device="cpu", maze_length: int = 100, max_episode_steps: int = 150,
                 indicator_pos: int | None = 0, agree_pos: int | None = None,
                 latent_p: tuple[float, float] | None = None, force_right: bool = True,
                 force_final_decision: bool = True, intermediate_checks: bool = False, check_reward: float = 0.1,
                 allow_left: bool = False, noise: bool = True, success_reward: float = 4.0,
                 fail_reward: float = -3.0, timeout_reward: float = 0.0):
        super().__init__(num_envs, seed, device)
        if maze_length < 2:
            raise ValueError(f"maze_length must be >= 2, got {maze_length}")
        if force_right and (allow_left or intermediate_checks):
            raise ValueError("force_right excludes allow_left and intermediate_checks")
        if intermediate_checks and not noise:
            raise ValueError("intermediate_checks need the intermediate indicators (noise=True)")
        if latent_p is not None and (indicator_pos is not None or agree_pos is not None):
            raise ValueError("latent_p replaces the indicators: use indicator_pos=None, agree_pos=None")
        for p in (indicator_pos, agree_pos):
            if p is not None and not 0 <= p < maze_length - 1:
                raise ValueError(f"indicator positions must be in [0, {maze_length - 1}), got {p}")
        self.L = maze_length
        self.max_episode_steps = max_episode_steps
        self.indicator_pos, self.agree_pos, self.latent_p = indicator_pos, agree_pos, latent_p
        self.force_right, self.force_final = force_right, force_final_decision
        self.checks, self.check_reward, self.allow_left, self.noise = intermediate_checks, check_reward, allow_left, noise
        self.success_reward, self.fail_reward, self.timeout_reward = success_reward, fail_reward, timeout_reward
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(4)
        self.task_dim = 2 if agree_pos is not None else 1
        self.num_tasks = 2 ** self.task_dim
        n = self.num_envs
        self.task = torch.zeros(n, self.task_dim, device=self.device)
        self.pos = torch.zeros(n, dtype=torch.long, device=self.device)
        self.check = torch.ones(n, device=self.device)
        self.done = torch.zeros(n, dtype=torch.bool, device=self.device)
        self.reset()

    # ----- task ------------------------------------------------------------------------
    def sample_tasks(self, n: int) -> torch.Tensor:
        return (self.rand(n, self.task_dim) < 0.5).float()

    def set_task(self, mask, tasks):
        self.task[mask] = tasks.reshape(-1, self.task_dim).round().float()

    def get_task(self):
        return self.task.clone()

    def task_to_id(self, tasks: torch.Tensor) -> torch.Tensor:
        t = tasks.round().long()
        return t[..., 0] if self.task_dim == 1 else t[..., 0] + 2 * t[..., 1]

    @property
    def goal_up(self) -> torch.Tensor:
        """[N] bool: the correct arm is UP."""
        if self.task_dim == 2:
            return self.task[:, 0] == self.task[:, 1]
        return self.task[:, 0] > 0.5

    # ----- dynamics --------------------------------------------------------------------
    def _draw_checks(self, mask=None):
        if self.latent_p is not None:
            p = torch.where(self.task[:, 0] > 0.5, self.latent_p[0], self.latent_p[1])
        else:
            p = torch.full((self.num_envs,), 0.5, device=self.device)
        new = torch.where(self.rand(self.num_envs) < p, 1.0, -1.0)
        self.check = new if mask is None else torch.where(mask, new, self.check)

    def _reset_state(self, mask):
        self.pos[mask] = 0
        self.done[mask] = False
        self._draw_checks(mask)

    def _obs(self):
        start = (self.pos == 0).float()
        end = (self.pos == self.L - 1).float()
        sign = lambda t: t * 2.0 - 1.0
        ind = torch.zeros(self.num_envs, device=self.device)
        if self.indicator_pos is not None:
            ind = torch.where(self.pos == self.indicator_pos, sign(self.task[:, 0]), ind)
        if self.agree_pos is not None:
            ind = torch.where(self.pos == self.agree_pos, sign(self.task[:, 1]), ind)
        check = self.check if self.noise else torch.zeros_like(self.check)
        return torch.stack([start, ind, end, check], 1)

    def step(self, actions):
        a0 = actions.reshape(-1).long().to(self.device)
        active = ~self.done
        at_end = self.pos == self.L - 1
        a = a0
        if self.force_final:
            a = torch.where(at_end & (a == LEFT), UP, torch.where(at_end & (a == RIGHT), DOWN, a))
        if self.force_right:
            a = torch.where(~at_end, RIGHT, a)
        reward = torch.zeros(self.num_envs, device=self.device)
        pos = self.pos
        moved_left = (a == LEFT) & self.allow_left
        pos = torch.where(moved_left, (pos - 1).clamp_min(0), pos)
        if not self.checks:
            pos = torch.where(a == RIGHT, (pos + 1).clamp_max(self.L - 1), pos)
        decide = at_end & ((a == UP) | (a == DOWN))
        success = decide & ((a == UP) == self.goal_up)
        reward = reward + torch.where(decide, torch.where(success, self.success_reward, self.fail_reward), 0.0)
        if self.checks:
            check_dir = torch.where(self.check > 0, UP, DOWN)
            correct = ~at_end & ~moved_left & (a0 == check_dir)
            reward = reward + torch.where(correct, self.check_reward, 0.0)
            pos = torch.where(correct, (pos + 1).clamp_max(self.L - 1), pos)
        self.pos = torch.where(active, pos, self.pos)
        truncated = self._advance_time()
        terminated = decide & active
        timed_out = truncated & ~terminated & active
        reward = torch.where(timed_out, reward + self.timeout_reward, reward)
        reward = torch.where(active, reward, torch.zeros_like(reward))
        self.done = self.done | terminated | truncated
        self._draw_checks()
        info = {"success": (success & active).float(), "pos": self.pos.float().unsqueeze(1)}
        return self._obs(), reward, terminated, truncated, info


@ENVS.register("TMaze-LN")
class TMazeLN(TMaze):
    def __init__(self, num_envs: int, seed: int = 0, device="cpu", **kw):
        kw.setdefault("indicator_pos", 0)
        super().__init__(num_envs, seed, device, **kw)


@ENVS.register("TMaze-LN-P1")
class TMazeLNP1(TMaze):
    def __init__(self, num_envs: int, seed: int = 0, device="cpu", **kw):
        kw.setdefault("indicator_pos", 1)
        super().__init__(num_envs, seed, device, **kw)


@ENVS.register("TMaze-Agree")
class TMazeAgree(TMaze):
    def __init__(self, num_envs: int, seed: int = 0, device="cpu", **kw):
        kw.setdefault("indicator_pos", 1)
        kw.setdefault("agree_pos", 50)
        super().__init__(num_envs, seed, device, **kw)


@ENVS.register("TMaze-Latent")
class TMazeLatent(TMaze):
    def __init__(self, num_envs: int, seed: int = 0, device="cpu", **kw):
        kw.setdefault("indicator_pos", None)
        kw.setdefault("latent_p", (0.7, 0.5))
        super().__init__(num_envs, seed, device, **kw)


@ENVS.register("TMaze-LS")
class TMazeLS(TMaze):
    def __init__(self, num_envs: int, seed: int = 0, device="cpu", **kw):
        kw.setdefault("indicator_pos", 1)
        kw.setdefault("intermediate_checks", True)
        kw.setdefault("check_reward", 0.1)
        kw.setdefault("force_right", False)
        kw.setdefault("force_final_decision", False)
        super().__init__(num_envs, seed, device, **kw)
