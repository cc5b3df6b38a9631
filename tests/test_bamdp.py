"""The BAMDP wrapper at its boundaries: R episodes, done flags, resets, early termination."""
import gymnasium as gym
import numpy as np
import torch

from environments import make_env
from environments.bamdp import BAMDPWrapper
from environments.base import MetaEnv


class Counter(MetaEnv):
    """obs = steps taken in this episode; copy i terminates early after ``die_at[i]`` steps."""

    def __init__(self, num_envs, seed=0, device="cpu", horizon=3, die_at=None):
        super().__init__(num_envs, seed, device)
        self.max_episode_steps, self.task_dim = horizon, 1
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.die_at = torch.tensor(die_at if die_at else [99] * num_envs)
        self.task = torch.zeros(num_envs, 1)
        self.reset()

    def sample_tasks(self, n):
        return torch.rand(n, 1, generator=self.generator)

    def set_task(self, mask, tasks):
        self.task[mask] = tasks

    def _reset_state(self, mask):
        pass

    def _obs(self):
        return self.step_count.float()[:, None]

    def step(self, actions):
        trunc = self._advance_time()
        term = self.step_count >= self.die_at
        return self._obs(), torch.ones(self.num_envs), term, trunc & ~term, {}

    def get_task(self):
        return self.task.clone()


def test_r_episodes_make_one_bamdp_with_flag_and_episode_index():
    env = BAMDPWrapper(Counter(2, horizon=3), episodes_per_task=2)
    obs = env.reset()
    task0 = env.get_task().clone()
    assert env.obs_dim == 2 and obs.tolist() == [[0, 0], [0, 0]]
    flags, dones, episodes, next_obs = [], [], [], []
    for _ in range(6):
        obs, r, done, info = env.step(torch.zeros(2, dtype=torch.long))
        flags.append(info["next_obs"][0, 1].item())
        next_obs.append(info["next_obs"][0, 0].item())
        dones.append(done[0].item())
        episodes.append(info["episode"][0].item())
        if t_is_first_episode_end(len(dones)):
            assert obs[0].tolist() == [0, 0]          # the policy sees the new episode's start
            assert torch.equal(env.get_task(), task0)  # same task inside the BAMDP
    assert flags == [0, 0, 1, 0, 0, 1]
    assert next_obs == [1, 2, 3, 1, 2, 3]            # terminal observations reach the encoder
    assert dones == [False] * 5 + [True]
    assert episodes == [0, 0, 0, 1, 1, 1]
    assert not torch.equal(env.get_task(), task0)     # new task after the BAMDP
    assert bool(info["bamdp_truncated"].all())


def t_is_first_episode_end(n):
    return n == 3


def test_early_termination_ends_episode_not_bamdp_and_partial_reset():
    env = BAMDPWrapper(Counter(2, horizon=3, die_at=[1, 99]), episodes_per_task=2)
    env.reset()
    task = env.get_task().clone()
    obs, r, done, info = env.step(torch.zeros(2, dtype=torch.long))
    assert info["done_mdp"].tolist() == [True, False] and not done.any()
    assert obs[:, 0].tolist() == [0, 1]               # copy 0 restarted, copy 1 untouched
    obs, r, done, info = env.step(torch.zeros(2, dtype=torch.long))
    assert done.tolist() == [True, False]             # copy 0: second episode died -> BAMDP over
    assert not info["bamdp_truncated"][0]             # ended by termination, not time limit
    new_task = env.get_task()
    assert not torch.equal(new_task[0], task[0]) and torch.equal(new_task[1], task[1])


def test_single_episode_has_no_flag():
    env = BAMDPWrapper(make_env("GridNavi", 2), episodes_per_task=1)
    assert env.obs_dim == 2 and env.reset().shape == (2, 2) and env.horizon == 15


def test_partial_reset_leaves_others_untouched():
    env = BAMDPWrapper(make_env("GridNavi", 3, seed=1), episodes_per_task=4)
    env.reset()
    for _ in range(3):
        env.step(torch.tensor([1, 2, 1]))
    before_pos, before_task = env.env.pos.clone(), env.get_task().clone()
    env.reset(mask=torch.tensor([False, True, False]))
    assert torch.equal(env.env.pos[[0, 2]], before_pos[[0, 2]])
    assert torch.equal(env.get_task()[[0, 2]], before_task[[0, 2]])
    assert env.env.pos[1].tolist() == [0, 0] and int(env.episode[1]) == 0
