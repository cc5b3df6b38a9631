"""Finite task pools (environments/task_pool.py): seeding, split, resets, coverage, checkpoints."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from environments.bamdp import BAMDPWrapper
from environments.base import MetaEnv
from environments.registry import make_env
from environments.task_pool import TaskPoolEnv, draw_pool


def _point(num_envs=8, seed=0, **kwargs):
    return make_env("SparsePointEnv", num_envs, seed=seed, **kwargs)


def _rows_in(rows: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    return (rows[:, None, :] - table[None]).abs().le(1e-6).all(-1).any(1)


def test_same_pool_seed_same_pool_independent_of_env_seed():
    a = TaskPoolEnv(_point(seed=1), 100, 10, 20, pool_seed=7, seed=1)
    b = TaskPoolEnv(_point(num_envs=3, seed=2), 100, 10, 20, pool_seed=7, seed=5)
    c = TaskPoolEnv(_point(seed=1), 100, 10, 20, pool_seed=8, seed=1)
    assert torch.equal(a.pool, b.pool)
    assert not torch.equal(a.pool, c.pool)
    assert a.pool.shape == (100, 2)
    assert torch.allclose(a.pool.norm(dim=1), torch.ones(100), atol=1e-5)   # goals on the unit circle
    assert (a.pool[:, 1] >= 0).all()                                          # semicircle by default


def test_pool_draw_leaves_inner_generator_untouched():
    bare, inner = _point(seed=3), _point(seed=3)
    draw_pool(inner, 50, pool_seed=11)
    assert torch.equal(bare.sample_tasks(5), inner.sample_tasks(5))


def test_split_is_disjoint_and_ordered():
    env = TaskPoolEnv(_point(), 100, 30, 50, pool_seed=0)
    assert torch.equal(env.train_tasks, env.pool[:30])
    assert torch.equal(env.eval_tasks, env.pool[-50:])
    assert not _rows_in(env.train_tasks, env.eval_tasks).any()
    # default train set: everything not held out
    assert len(TaskPoolEnv(_point(), 100, None, 40).train_tasks) == 60


@pytest.mark.parametrize("train,evl", [(60, 50), (0, 10), (10, 0)])
def test_bad_split_raises(train, evl):
    with pytest.raises(ValueError):
        TaskPoolEnv(_point(), 100, train, evl)


def test_grid_pool_is_unique_and_too_many_goals_raise():
    env = TaskPoolEnv(make_env("GridNavi", 4, seed=0), 21, 16, 5, pool_seed=2)
    assert len(torch.unique(env.pool, dim=0)) == 21          # all 21 GridNavi goals, no duplicates
    with pytest.raises(ValueError, match="distinct"):
        TaskPoolEnv(make_env("GridNavi", 4, seed=0), 22, 16, 5)


@pytest.mark.parametrize("name,kwargs", [("GridNavi", {}), ("SparsePointEnv", {"goal_sampler": "circle"})])
def test_resets_only_into_active_set(name, kwargs):
    inner = make_env(name, 6, seed=0, **kwargs)
    n_goals = 21 if name == "GridNavi" else 200
    env = TaskPoolEnv(inner, n_goals, 8, 5, pool_seed=4, seed=9)
    gen = torch.Generator().manual_seed(0)
    for task_set, allowed in (("train", env.train_tasks), ("eval", env.eval_tasks)):
        env.set_task_set(task_set)
        env.reset()
        for _ in range(300):
            mask = torch.rand(6, generator=gen) < 0.5
            env.reset(mask)
            assert _rows_in(env.get_task().cpu(), allowed).all()
            assert torch.equal(env.pool[env.task_ids], env.get_task().cpu())
        if task_set == "train":  # the other set is never touched
            assert not _rows_in(env.get_task().cpu(), env.eval_tasks).any()


def test_bamdp_autoresets_stay_in_train_set():
    env = TaskPoolEnv(_point(num_envs=4), 100, 5, 20, pool_seed=1)
    env.inner.max_episode_steps = 3
    bamdp = BAMDPWrapper(env, episodes_per_task=2)
    bamdp.reset()
    seen = set()
    for _ in range(200):
        bamdp.step(torch.zeros(4, 2))
        assert _rows_in(env.get_task().cpu(), env.train_tasks).all()
        seen.update(env.task_ids.tolist())
    assert seen == set(range(5))


def test_uniform_coverage_of_train_set():
    env = TaskPoolEnv(_point(num_envs=16), 100, 10, 10, pool_seed=0, seed=123)
    counts = torch.zeros(10)
    for _ in range(500):
        env.reset()
        counts += torch.bincount(env.task_ids, minlength=10).float()
    assert counts.sum() == 8000
    # chi-square goodness of fit to the uniform distribution over the 10 training goals
    p = stats.chisquare(counts.numpy()).pvalue
    assert p > 1e-3, counts


def test_unlimited_eval_draws_fresh_tasks():
    env = TaskPoolEnv(_point(num_envs=32), 100, 10, None, pool_seed=0)
    assert env.eval_tasks is None
    env.set_task_set("eval")
    env.reset()
    assert (env.task_ids == -1).all()
    assert not _rows_in(env.get_task().cpu(), env.pool).any()
    with pytest.raises(ValueError):
        env.set_task_set("test")


def test_explicit_tasks_and_forwarding():
    env = TaskPoolEnv(_point(num_envs=3), 50, 10, 10, pool_seed=0)
    tasks = torch.stack([env.pool[42], torch.tensor([5.0, 5.0]), env.pool[3]])
    env.reset(tasks=tasks)
    assert env.task_ids.tolist() == [42, -1, 3]
    assert torch.equal(env.get_task(), tasks)
    assert env.obs_dim == 2 and env.max_episode_steps == 100 and env.goal_radius == 0.2
    obs, rew, term, trunc, info = env.step(torch.ones(3, 2))
    assert torch.allclose(obs, torch.full((3, 2), 0.1)) and "sparse_reward" in info
    assert int(env.step_count[0]) == 1


def test_checkpoint_resumes_exactly():
    def run(env, steps):
        out = []
        gen = torch.Generator().manual_seed(5)
        for _ in range(steps):
            env.reset(torch.rand(4, generator=gen) < 0.5)
            out.append(env.step(torch.ones(4, 2))[0])
            out.append(env.get_task())
        return torch.cat(out)

    env = TaskPoolEnv(_point(num_envs=4), 100, 10, 10, pool_seed=0)
    run(env, 7)
    state = env.state_dict()
    expected = run(env, 20)
    other = TaskPoolEnv(_point(num_envs=4, seed=99), 100, 10, 10, pool_seed=0, seed=42)
    other.load_state_dict(state)
    assert torch.equal(run(other, 20), expected)
    with pytest.raises(ValueError, match="pool"):
        TaskPoolEnv(_point(num_envs=4), 100, 10, 10, pool_seed=1).load_state_dict(state)


class _NumpyTaskEnv(MetaEnv):
    """A minimal env that samples tasks with a numpy ``task_rng`` (like the MuJoCo envs)."""

    def __init__(self, num_envs, seed=0):
        super().__init__(num_envs, seed)
        self.task_rng = np.random.default_rng(seed)
        self.task_dim = 1
        self.task = torch.zeros(num_envs, 1)

    def sample_tasks(self, n):
        return torch.as_tensor(self.task_rng.uniform(size=(n, 1)), dtype=torch.float32)

    def set_task(self, mask, tasks):
        self.task[mask] = tasks

    def _reset_state(self, mask):
        pass

    def _obs(self):
        return self.task.clone()

    def get_task(self):
        return self.task.clone()


def test_numpy_task_rng_envs_pool_seeded_and_stream_restored():
    bare, inner = _NumpyTaskEnv(3, seed=4), _NumpyTaskEnv(3, seed=4)
    a = draw_pool(inner, 20, pool_seed=1)
    assert torch.equal(a, draw_pool(_NumpyTaskEnv(2, seed=9), 20, pool_seed=1))
    assert torch.equal(bare.sample_tasks(5), inner.sample_tasks(5))
    env = TaskPoolEnv(_NumpyTaskEnv(3), 20, 4, 4, pool_seed=1)
    assert torch.equal(env.pool, a) and _rows_in(env.get_task(), env.train_tasks).all()
