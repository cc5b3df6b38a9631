"""Tests of environments/gym_adapter.py (GymnasiumMetaEnv)."""
import gymnasium as gym
import numpy as np
import pytest
import torch

from environments.gym_adapter import GymnasiumMetaEnv

torch.set_num_threads(1)


class GoalLine(gym.Env):
    """1-D point, reward -|x - goal|, terminates beyond |x| > 0.5 when ``terminate`` is set."""

    observation_space = gym.spaces.Box(-10, 10, shape=(1,), dtype=np.float32)
    action_space = gym.spaces.Box(-1, 1, shape=(1,), dtype=np.float32)

    def __init__(self, terminate: bool = False):
        self.goal, self.x, self.terminate = 0.0, 0.0, terminate

    def set_task(self, task):
        assert isinstance(task, np.ndarray) and task.shape == (1,)
        self.goal = float(task[0])

    def belief(self):
        return np.array([1.0, 0.0])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-0.1, 0.1))
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.x += 0.1 * float(np.clip(action[0], -1, 1))
        reward = -abs(self.x - self.goal)
        return np.array([self.x], np.float32), reward, self.terminate and abs(self.x) > 0.5, False, {"dist": -reward}


class Chain(gym.Env):
    """Discrete actions / discrete observations, for the flattening path."""

    observation_space = gym.spaces.Discrete(4)
    action_space = gym.spaces.Discrete(2)

    def __init__(self):
        self.s, self.good = 0, 1

    def set_task(self, task):
        self.good = int(task[0])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.s = 0
        return self.s, {}

    def step(self, a):
        self.s = min(3, self.s + 1) if a == self.good else max(0, self.s - 1)
        return self.s, float(self.s == 3), False, False, {}


def _make(n=4, seed=0, **kw):
    return GymnasiumMetaEnv(GoalLine, num_envs=n, seed=seed, max_episode_steps=kw.pop("H", 10),
                            task_sampler=lambda rng, k: rng.uniform(-1, 1, size=(k, 1)),
                            info_keys=("dist",), pos_fn=lambda e: [e.x], **kw)


def test_docstring_example_contract():
    env = _make()
    obs = env.reset()
    assert obs.shape == (4, 1) and obs.dtype == torch.float32 and env.obs_dim == 1 and env.task_dim == 1
    obs, r, term, trunc, info = env.step(torch.zeros(4, 1))
    assert r.shape == (4,) and r.dtype == torch.float32 and term.dtype == torch.bool and trunc.dtype == torch.bool
    assert info["pos"].shape == (4, 1) and info["dist"].shape == (4,)
    goal = env.get_task()[:, 0]
    assert torch.allclose(r, -(obs[:, 0] - goal).abs(), atol=1e-5)
    assert torch.allclose(info["dist"], -r)


def test_reward_follows_task():
    env = _make(n=2)
    env.reset(tasks=torch.tensor([[1.0], [-1.0]]))
    for _ in range(5):
        _, r, *_ = env.step(torch.ones(2, 1))
    assert r[0] > r[1]


def test_truncation_and_reset_mdp_keeps_task():
    env = _make(n=2, H=3)
    tasks = env.get_task().clone()
    for t in range(3):
        *_, trunc, _ = env.step(torch.zeros(2, 1))
    assert trunc.all()
    env.reset_mdp()
    assert torch.equal(env.get_task(), tasks) and (env.step_count == 0).all()


def test_same_seed_same_trajectories_and_partial_reset():
    def run(seed, reset_at=None):
        env = _make(n=3, seed=seed)
        out = [env.reset()]
        for t in range(6):
            if t == reset_at:
                env.reset(mask=torch.tensor([False, True, False]))
            o, *_ = env.step(torch.full((3, 1), 0.3))
            out.append(o)
        return torch.stack(out), env.get_task()

    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    d = run(0, reset_at=3)
    keep = [0, 2]
    assert torch.equal(d[0][:, keep], a[0][:, keep]) and torch.equal(d[1][keep], a[1][keep])
    assert not torch.equal(d[1][1], a[1][1])


def test_sticky_termination():
    env = GymnasiumMetaEnv(GoalLine, num_envs=2, seed=0, max_episode_steps=50, env_kwargs={"terminate": True},
                           task_sampler=lambda rng, k: rng.uniform(-1, 1, size=(k, 1)))
    acts = torch.tensor([[1.0], [0.0]])
    for _ in range(7):
        obs, r, term, *_ = env.step(acts)
    assert term.tolist() == [True, False]
    frozen = obs[0].clone()
    obs, r, term, *_ = env.step(acts)
    assert term.tolist() == [True, False] and r[0] == 0.0 and torch.equal(obs[0], frozen)
    env.reset_mdp(term)
    _, _, term, *_ = env.step(acts)
    assert not term.any()


def test_discrete_spaces_and_belief():
    env = GymnasiumMetaEnv(Chain, num_envs=2, seed=0, max_episode_steps=5,
                           task_sampler=lambda rng, k: rng.integers(0, 2, size=(k, 1)), num_tasks=2)
    assert env.is_discrete and env.obs_dim == 4
    env.reset(tasks=torch.tensor([[1.0], [0.0]]))
    for _ in range(3):
        obs, r, *_ = env.step(torch.tensor([1, 1]))
    assert r.tolist() == [1.0, 0.0]
    assert torch.equal(obs[0], torch.tensor([0.0, 0.0, 0.0, 1.0]))
    with pytest.raises(NotImplementedError):
        env.get_belief()
    env2 = _make(n=2, belief_method="belief")
    assert env2.belief_dim == 2 and env2.get_belief().shape == (2, 2)


def test_missing_task_method_raises():
    with pytest.raises(AttributeError):
        GymnasiumMetaEnv(GoalLine, num_envs=1, max_episode_steps=5, set_task_method="nope",
                         task_sampler=lambda rng, k: np.zeros((k, 1)))


def test_registered_gymnasium_id_and_spec_time_limit():
    env_id = "GoalLineAdapterTest-v0"
    if env_id not in gym.registry:
        gym.register(id=env_id, entry_point=GoalLine, max_episode_steps=7)
    env = GymnasiumMetaEnv(env_id, num_envs=2, seed=0, env_kwargs={"terminate": False},
                           task_sampler=lambda rng, k: rng.uniform(-1, 1, size=(k, 1)))
    assert env.max_episode_steps == 7
    env.reset(tasks=torch.tensor([[0.5], [-0.5]]))
    assert env.envs[0].unwrapped.goal == 0.5 and env.envs[1].unwrapped.goal == -0.5
    for t in range(7):
        *_, trunc, _ = env.step(torch.zeros(2, 1))
        assert trunc.all() == (t == 6)
    env.close()


def test_state_dict_continues_exactly():
    env = _make(n=3, seed=0)
    for _ in range(4):
        env.step(torch.full((3, 1), 0.5))
    state = env.state_dict()
    assert state["envs"] is not None

    def run(e):
        out = [e.step(torch.full((3, 1), -0.3))[0] for _ in range(5)]
        out.append(e.reset(mask=torch.tensor([True, False, True])))
        return torch.cat(out), e.get_task()

    a = run(env)
    other = _make(n=3, seed=7)
    other.load_state_dict(state)
    b = run(other)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
