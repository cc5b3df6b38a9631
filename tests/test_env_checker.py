"""The env contract checker: registered envs pass; small deliberately broken fake envs are each
caught with a message that names the defect."""
from __future__ import annotations

import random

import gymnasium as gym
import numpy as np
import pytest
import torch

from environments.base import MetaEnv
from environments.checker import EnvContractError, check_env


class GoodEnv(MetaEnv):
    """A tiny valid env: 1-D position, goal task, H=5, terminates on reaching the goal."""

    max_episode_steps = 5
    task_dim = 1

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", max_episode_steps: int = 5):
        super().__init__(num_envs, seed, device)
        self.max_episode_steps = max_episode_steps
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.pos = torch.zeros(self.num_envs, device=self.device)
        self.goal = torch.zeros(self.num_envs, device=self.device)
        self.reset()

    def sample_tasks(self, n):
        return self.rand(n, 1) * 4 - 2

    def set_task(self, mask, tasks):
        self.goal[mask] = tasks[:, 0]

    def _reset_state(self, mask):
        self.pos[mask] = self.rand(int(mask.sum())) * 0.1

    def _obs(self):
        return torch.stack([self.pos, self.step_count.float()], 1)

    def step(self, actions):
        self.pos = self.pos + 0.1 * actions.reshape(self.num_envs).clamp(-1, 1)
        reward = -(self.pos - self.goal).abs()
        terminated = (self.pos - self.goal).abs() < 0.01
        truncated = self._advance_time()
        return self._obs(), reward, terminated, truncated, {"success": terminated.float()}

    def get_task(self):
        return self.goal[:, None].clone()


def test_a_valid_fake_env_passes():
    check_env(GoodEnv)
    check_env(GoodEnv, num_envs=2, seed=5, max_episode_steps=1)


@pytest.mark.parametrize("name", ["GridNavi", "PointEnv"])
def test_registered_envs_pass(name):
    from environments import ENVS

    check_env(ENVS.get(name), num_envs=3, seed=1)


def test_global_rng_is_restored():
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    want = (torch.rand(3), np.random.rand(), random.random())
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    check_env(GoodEnv)
    got = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(got[0], want[0]) and got[1:] == want[1:]


# ------------------------------------------------------------------ broken envs, one defect each
class Float64Obs(GoodEnv):
    def _obs(self):
        return super()._obs().double()


class WrongObsShape(GoodEnv):
    def _obs(self):
        return super()._obs()[:, :1]


class RewardColumn(GoodEnv):
    def step(self, actions):
        obs, rew, term, trunc, info = super().step(actions)
        return obs, rew[:, None], term, trunc, info


class FloatTerminated(GoodEnv):
    def step(self, actions):
        obs, rew, term, trunc, info = super().step(actions)
        return obs, rew, term.float(), trunc, info


class NoTimeLimit(GoodEnv):
    def step(self, actions):
        obs, rew, term, trunc, info = super().step(actions)
        return obs, rew, term, torch.zeros_like(trunc), info


class EarlyTruncation(GoodEnv):
    def _advance_time(self):
        self.step_count += 1
        return self.step_count >= self.max_episode_steps - 2


class ResetAllCopies(GoodEnv):
    def reset(self, mask=None, tasks=None):
        return super().reset(None, None)


class ResetMdpTouchesOthers(GoodEnv):
    def reset_mdp(self, mask=None):
        return super().reset_mdp(None)


class GlobalRng(GoodEnv):
    def sample_tasks(self, n):
        return torch.rand(n, 1) * 4 - 2


class WrongTaskShape(GoodEnv):
    def get_task(self):
        return self.goal.clone()


class MetaDeviceObs(GoodEnv):
    def _obs(self):
        return super()._obs().to("meta")


class NanReward(GoodEnv):
    def step(self, actions):
        obs, rew, term, trunc, info = super().step(actions)
        return obs, rew * float("nan"), term, trunc, info


class BadInfo(GoodEnv):
    def step(self, actions):
        obs, rew, term, trunc, info = super().step(actions)
        return obs, rew, term, trunc, {"success": torch.tensor(1.0)}


class FourTuple(GoodEnv):
    def step(self, actions):
        return super().step(actions)[:4]


class CrashingConstructor(GoodEnv):
    def __init__(self, num_envs, seed=0, device="cpu"):
        raise RuntimeError("needs a licence file")


class NoSpace(GoodEnv):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.observation_space = None


class StepRaises(GoodEnv):
    def step(self, actions):
        raise IndexError("index 3 is out of bounds")


@pytest.mark.parametrize("env_cls, needle", [
    (Float64Obs, "reset() observation has dtype torch.float64, expected torch.float32"),
    (WrongObsShape, "observation has shape (3, 1), expected (3, 2)"),
    (RewardColumn, "step() reward has shape (3, 1), expected (3,)"),
    (FloatTerminated, "step() terminated has dtype torch.float32, expected torch.bool"),
    (NoTimeLimit, "did not set truncated at max_episode_steps=5"),
    (EarlyTruncation, "before max_episode_steps=5"),
    (ResetAllCopies, "reset(mask) with only copy 0 masked changed the observations of the other copies"),
    (ResetMdpTouchesOthers, "reset_mdp(mask) with only copy 0 masked changed the observations of the other copies"),
    (GlobalRng, "two envs built with seed=0 differ in task"),
    (WrongTaskShape, "get_task() has shape (3,), expected (3, 1)"),
    (MetaDeviceObs, "reset() observation is on device meta, expected env.device (cpu)"),
    (NanReward, "step() reward holds NaN or inf"),
    (BadInfo, "step() info['success'] must be a tensor with a first dim of 3"),
    (FourTuple, "step() must return (obs, reward, terminated, truncated, info)"),
    (CrashingConstructor, "constructing it with num_envs=3, seed=0, device='cpu' failed: RuntimeError: needs a licence"),
    (NoSpace, "observation_space must be a 1-D gymnasium space"),
    (StepRaises, "step() (step 1) raised IndexError: index 3 is out of bounds"),
])
def test_each_defect_is_caught_with_its_message(env_cls, needle):
    with pytest.raises(EnvContractError) as err:
        check_env(env_cls)
    msg = str(err.value)
    assert needle in msg, msg
    assert msg.startswith(f"env {env_cls.__name__}: ") and "\n" not in msg


def test_a_factory_function_is_accepted():
    def factory(num_envs, seed, device):
        return GoodEnv(num_envs, seed=seed, device=device, max_episode_steps=3)

    check_env(factory)
    with pytest.raises(ValueError, match="num_envs >= 2"):
        check_env(GoodEnv, num_envs=1)
