"""MAML/MIME envs: 2-D navigation (dense + sparse rings), dog-feeding robot, meta-pendulum.

Known answers on scripted paths, the task distributions, the fixed test tasks, masks,
seeding, shapes and dtypes.
"""
import math
from collections import deque

import gymnasium as gym
import numpy as np
import pytest
import torch
from scipy import integrate

from environments import make_env
from environments.control.pendulum import TEST_PAIRS, TRAIN_PAIRS, solved_from_obs
from environments.navigation.dog_feeding import BOWLS, START

ALL = ["Nav2DDense", "Nav2DWideRing", "Nav2DHardExploration", "Nav2DCloseRing", "DogFeeding", "MetaPendulum",
       "MetaPendulumSparse"]


def _act(*xy, n=1):
    return torch.tensor([list(xy)] * n, dtype=torch.float32)


# ----- 2-D navigation ----------------------------------------------------------------------
def test_dense_nav_clips_actions_rewards_distance_and_terminates_on_goal():
    env = make_env("Nav2DDense", 1)
    env.reset(tasks=torch.tensor([[0.3, -0.2]]))
    obs, r, term, trunc, info = env.step(_act(0.5, -0.5))          # clipped to (0.1, -0.1)
    assert torch.allclose(obs, torch.tensor([[0.1, -0.1]]))
    assert abs(float(r) + math.hypot(0.2, 0.1)) < 1e-6 and not term.any() and float(info["success"]) == 0
    obs, r, term, *_ = env.step(_act(0.1, -0.1))
    assert abs(float(r) + 0.1) < 1e-6 and not term.any()
    obs, r, term, trunc, info = env.step(_act(0.1, 0.0))            # now at the goal
    assert torch.allclose(obs, torch.tensor([[0.3, -0.2]]), atol=1e-6)
    assert bool(term.all()) and float(info["success"]) == 1.0 and abs(float(r)) < 1e-6
    assert env.max_episode_steps == 100 and np.allclose(env.action_space.high, 0.1)


def test_sparse_ring_reward_exactly_inside_goal_radius():
    env = make_env("Nav2DWideRing", 1)
    env.reset(tasks=torch.tensor([[0.0, 5.55]]))
    for k in range(1, 61):
        obs, r, term, trunc, info = env.step(_act(0.0, 0.3))        # 0.1 up per step
        dist = abs(5.55 - 0.1 * k)
        assert abs(float(obs[0, 1]) - 0.1 * k) < 1e-4
        assert float(r) == (1.0 if dist < 1.0 else 0.0), k          # k >= 46 inside (0.95), k = 45 outside (1.05)
        assert float(info["sparse_reward"]) == float(r) == float(info["success"])
        assert abs(float(info["dense_reward"]) + dist) < 1e-4
        assert not term.any()


@pytest.mark.parametrize("name,horizon", [("Nav2DWideRing", 100), ("Nav2DHardExploration", 100), ("Nav2DCloseRing", 300),
                                          ("Nav2DDense", 100), ("DogFeeding", 1000), ("MetaPendulum", 50)])
def test_time_limits(name, horizon):
    env = make_env(name, 2)
    act = torch.zeros(2, *env.action_space.shape)
    for t in range(horizon):
        *_, trunc, _ = env.step(act)
        assert bool(trunc.all()) == (t == horizon - 1)


@pytest.mark.parametrize("name,low,high", [("Nav2DWideRing", 5.0, 9.0), ("Nav2DHardExploration", 8.0, 9.0),
                                           ("Nav2DCloseRing", 5.0, 5.5)])
def test_ring_goals_follow_the_truncated_gaussian_radius(name, low, high):
    """MIME: g = N(0, I) * high, rejected until low < ||g|| < high. Its radius density is
    r exp(-r^2 / (2 high^2)) on (low, high); check the mean radius and P(r < mid) against it."""
    env = make_env(name, 1, seed=5)
    goals = env.sample_tasks(20000).double()
    r = goals.norm(dim=1)
    assert ((r > low) & (r < high)).all()
    dens = lambda x: x * math.exp(-x * x / (2 * high * high))
    z = integrate.quad(dens, low, high)[0]
    mean = integrate.quad(lambda x: x * dens(x), low, high)[0] / z
    sd = math.sqrt(integrate.quad(lambda x: x * x * dens(x), low, high)[0] / z - mean ** 2)
    assert abs(float(r.mean()) - mean) < 4 * sd / math.sqrt(len(r))
    mid = (low + high) / 2
    p_mid = integrate.quad(dens, low, mid)[0] / z
    assert abs(float((r < mid).double().mean()) - p_mid) < 4 * math.sqrt(p_mid * (1 - p_mid) / len(r))
    angle = torch.atan2(goals[:, 1], goals[:, 0])
    assert abs(float(torch.cos(angle).mean())) < 0.03 and abs(float(torch.sin(angle).mean())) < 0.03


def test_dense_goals_uniform_in_square():
    g = make_env("Nav2DDense", 1, seed=2).sample_tasks(20000)
    assert (g.abs() <= 0.5).all() and abs(float(g.mean())) < 0.01 and abs(float(g.var()) - 1 / 12) < 0.003


def test_fixed_test_goals():
    wide = make_env("Nav2DWideRing", 1).test_tasks()
    assert wide.shape == (16, 2)
    assert torch.allclose(wide.norm(dim=1), torch.tensor([5.5] * 8 + [8.5] * 8))
    assert torch.allclose(wide[0], torch.tensor([0.0, 5.5])) and torch.allclose(wide[9], torch.tensor([8.5, 0.0]))
    hard = make_env("Nav2DHardExploration", 1).test_tasks()
    close = make_env("Nav2DCloseRing", 1).test_tasks()
    assert hard.shape == close.shape == (8, 2)
    assert torch.allclose(hard.norm(dim=1), torch.full((8,), 8.5)) and torch.allclose(close.norm(dim=1), torch.full((8,), 5.25))
    angles = torch.atan2(hard[:, 1], hard[:, 0]).sort().values
    assert torch.allclose(angles.diff(), torch.full((7,), math.pi / 4), atol=1e-5)   # 8 compass directions
    d1, d2 = make_env("Nav2DDense", 1, seed=0).test_tasks(), make_env("Nav2DDense", 1, seed=9).test_tasks()
    assert d1.shape == (20, 2) and torch.equal(d1, d2) and (d1.abs() <= 0.5).all()   # same set whatever the run seed


# ----- dog-feeding robot ------------------------------------------------------------------
def _dog(n=1, bowl=0, **kw):
    env = make_env("DogFeeding", n, **kw)
    env.reset(tasks=torch.tensor([BOWLS[bowl]] * n))
    return env


def test_dog_outer_wall_stops_motion_and_sets_collision_flag():
    env = _dog()
    assert torch.allclose(env.reset_mdp(), torch.tensor([[1.3, 2.0, 0.0]]))
    for _ in range(10):                                   # 1.3 -> 0.3: 3 x 3 pixels 2..4 still free
        obs, *_ , info = env.step(_act(-0.1, 0.0))
        assert float(obs[0, 2]) == 0.0
    assert abs(float(obs[0, 0]) - 0.3) < 1e-5
    obs, *_, info = env.step(_act(-0.1, 0.0))             # pixel 2 would touch the wall (pixels 0, 1)
    assert abs(float(obs[0, 0]) - 0.3) < 1e-5 and float(obs[0, 2]) == 1.0 and float(info["collision"]) == 1.0
    obs, *_ = env.step(_act(0.1, 0.0))                    # moving away clears the flag
    assert abs(float(obs[0, 0]) - 0.4) < 1e-5 and float(obs[0, 2]) == 0.0


def test_dog_furniture_blocks_and_other_copies_still_move():
    """The bed covers pixels x 5..14, y 40..49: going up from the start (y pixel 20), y = 3.8 is
    the last free place (its 3 x 3 neighbourhood reaches row 39)."""
    env = _dog(n=3)
    acts = torch.tensor([[0.0, 0.1], [0.1, 0.0], [0.0, 0.0]])
    for _ in range(18):
        obs, *_ = env.step(acts)
    assert torch.allclose(obs[0], torch.tensor([1.3, 3.8, 0.0]), atol=1e-5)
    obs, *_ = env.step(acts)
    assert torch.allclose(obs[0], torch.tensor([1.3, 3.8, 1.0]), atol=1e-5)     # blocked by the bed
    assert torch.allclose(obs[1], torch.tensor([1.3 + 1.9, 2.0, 0.0]), atol=1e-5)  # the free copy moved on
    assert torch.allclose(obs[2], torch.tensor([1.3, 2.0, 0.0]))                   # standing still is no collision


def test_dog_bowl_reward_only_within_radius_of_the_food_bowl():
    env = _dog(bowl=1)
    env.pos[:] = torch.tensor([5.3, 3.45])                   # 0.55 below bowl 1
    obs, r, *_, info = env.step(_act(0.0, 0.0))
    assert float(r) == 0.0 and float(info["success"]) == 0.0 and abs(float(info["dense_reward"]) + 0.55) < 1e-5
    obs, r, *_, info = env.step(_act(0.0, 0.1))
    assert float(r) == 1.0 and float(info["success"]) == 1.0 and abs(float(info["dense_reward"]) + 0.45) < 1e-5
    env.reset(tasks=torch.tensor([BOWLS[2]]))                # same place, other bowl: nothing
    env.pos[:] = torch.tensor([5.3, 3.55])
    _, r, *_ = env.step(_act(0.0, 0.0))
    assert float(r) == 0.0
    dense = _dog(bowl=1, sparse=False)
    dense.pos[:] = torch.tensor([5.3, 3.55])
    _, r, *_ = dense.step(_act(0.0, 0.0))
    assert abs(float(r) + 0.45) < 1e-5


def test_dog_map_is_solvable_every_bowl_reachable_from_the_start():
    env = _dog()
    free = env.free
    start = (round(START[1] * 10), round(START[0] * 10))
    seen, queue = {start}, deque([start])
    while queue:
        y, x = queue.popleft()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                nb = (y + dy, x + dx)
                if 0 <= nb[0] < 100 and 0 <= nb[1] < 100 and nb not in seen and bool(free[nb]):
                    seen.add(nb)
                    queue.append(nb)
    for bx, by in BOWLS:
        assert (round(by * 10), round(bx * 10)) in seen
    assert 0 < free.float().mean() < 0.9                       # there are obstacles


def test_dog_tasks_are_the_three_bowls():
    env = make_env("DogFeeding", 1, seed=4)
    tasks = env.sample_tasks(3000)
    ids = env.task_to_id(tasks)
    assert torch.equal(tasks, env.bowls[ids]) and torch.bincount(ids, minlength=3).min() > 900
    assert torch.allclose(env.test_tasks(), torch.tensor([[2.0, 9.0], [8.5, 1.3]]))
    assert env.num_tasks == 3 and env.observation_space.shape == (3,)


# ----- meta-pendulum ------------------------------------------------------------------------
@pytest.mark.parametrize("consts", [dict(dt=0.05, max_speed=8.0, m=1.0, l=1.0),     # gymnasium's own defaults
                                    dict(dt=0.1, max_speed=20.0, m=1.0, l=1.0),      # MIME's constants
                                    dict(dt=0.1, max_speed=20.0, m=0.7, l=0.4)])
def test_pendulum_matches_gymnasium_step(consts):
    ref = gym.make("Pendulum-v1").unwrapped
    ref.reset(seed=0)
    ref.dt, ref.max_speed, ref.m, ref.l = consts["dt"], consts["max_speed"], consts["m"], consts["l"]
    rng = np.random.default_rng(0)
    n = 64
    th = rng.uniform(-4, 4, n).astype(np.float32)
    thdot = rng.uniform(-consts["max_speed"], consts["max_speed"], n).astype(np.float32)
    u = rng.uniform(-3, 3, (n, 1)).astype(np.float32)           # some beyond the torque limit
    env = make_env("MetaPendulum", n, dt=consts["dt"], max_speed=consts["max_speed"], reward="cost")
    env.reset(tasks=torch.tensor([[consts["m"], consts["l"]]] * n))
    env.set_state(torch.from_numpy(th), torch.from_numpy(thdot))
    obs, r, *_ = env.step(torch.from_numpy(u))
    clipped = 0
    for i in range(n):
        ref.state = np.array([th[i], thdot[i]], dtype=np.float64)
        o, rr, *_ = ref.step(u[i])
        np.testing.assert_allclose(obs[i].numpy(), o, atol=1e-5, rtol=1e-5)
        assert abs(float(r[i]) - rr) < 1e-5 * max(1.0, abs(rr))
        clipped += abs(o[2]) == consts["max_speed"]
    assert clipped > 0                                           # the speed clip was exercised


def test_pendulum_dense_reward_known_answer():
    env = make_env("MetaPendulum", 1)
    env.reset(tasks=torch.tensor([[0.5, 0.5]]))
    env.set_state(torch.tensor([3.0]), torch.tensor([0.0]))
    obs, r, *_ = env.step(torch.tensor([[1.0]]))
    thdot = (30.0 / (2 * 0.5) * math.sin(3.0) + 3.0 / (0.5 * 0.25)) * 0.1
    th = 3.0 + thdot * 0.1
    assert abs(float(obs[0, 2]) - thdot) < 1e-5 and abs(float(obs[0, 1]) - math.sin(th)) < 1e-5
    assert abs(float(r) + math.sqrt(2 * 0.25 * (1 - math.cos(th)))) < 1e-5


def test_pendulum_sparse_reward_exactly_within_0_0005_l():
    """Hold the pendulum still at small angles (torque cancels gravity): reward 1 iff the
    tip is closer than 0.0005 l to upright, i.e. |theta| < ~0.0005."""
    env = make_env("MetaPendulumSparse", 4)
    m, l, g = 0.5, 0.5, 10.0
    env.reset(tasks=torch.tensor([[m, l]] * 4))
    theta = torch.tensor([0.0, 0.0004, -0.0004, 0.0006])
    env.set_state(theta, torch.zeros(4))
    hold = -(m * l * g / 2) * torch.sin(theta)
    _, r, *_, info = env.step(hold[:, None])
    assert r.tolist() == [1.0, 1.0, 1.0, 0.0] and torch.equal(info["success"], r)
    assert torch.allclose(info["dense_reward"], -l * theta.abs(), atol=1e-7)


def test_pendulum_task_sets_include_last_training_pair():
    env = make_env("MetaPendulum", 1, seed=1)
    tasks = env.sample_tasks(6000)
    pairs = [tuple(round(v, 3) for v in t) for t in tasks.tolist()]
    counts = {p: pairs.count(p) for p in TRAIN_PAIRS}
    assert set(pairs) == set(TRAIN_PAIRS)
    assert counts[(0.7, 0.7)] > 850 and min(counts.values()) > 850          # each ~1000 of 6000
    assert torch.allclose(env.test_tasks(), torch.tensor(TEST_PAIRS))


def test_pendulum_start_state_and_trajectory_success():
    env = make_env("MetaPendulum", 500, seed=3)
    th = torch.atan2(env._obs()[:, 1], env._obs()[:, 0]) % (2 * math.pi)
    assert ((th >= 3.0 - 1e-5) & (th <= 3.28 + 1e-5)).all() and (env._obs()[:, 2].abs() <= 0.01).all()
    up = torch.tensor([[1.0, 0.0, 0.0]]).repeat(12, 2, 1)        # [T=12, 2 copies, 3]
    up[-3, 1] = torch.tensor([math.cos(0.001), math.sin(0.001), 0.0])
    assert solved_from_obs(up, torch.tensor([0.5, 0.5])).tolist() == [True, False]


# ----- every env: contract ------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_shapes_dtypes_and_spaces(name):
    env = make_env(name, 5, seed=0)
    obs = env.reset()
    assert obs.shape == (5, env.obs_dim) and obs.dtype == torch.float32
    act = torch.as_tensor(np.stack([env.action_space.sample() for _ in range(5)]))
    obs, r, term, trunc, info = env.step(act)
    assert obs.dtype == r.dtype == torch.float32 and r.shape == (5,)
    assert term.dtype == trunc.dtype == torch.bool and term.shape == trunc.shape == (5,)
    assert all(v.shape[0] == 5 and v.dtype == torch.float32 for v in info.values())
    assert "success" in info
    assert env.get_task().shape == (5, env.task_dim) and env.task_dim == 2
    assert env.test_tasks().shape[1] == env.task_dim


@pytest.mark.parametrize("name", ALL)
def test_reset_with_mask_keeps_other_copies(name):
    env = make_env(name, 4, seed=0)
    act = torch.as_tensor(np.stack([env.action_space.sample() for _ in range(4)])) * 0 + env.action_space.high[0]
    for _ in range(3):
        env.step(act)
    before_obs, before_task = env._obs().clone(), env.get_task().clone()
    mask = torch.tensor([True, False, True, False])
    new = env.test_tasks()[:1].repeat(2, 1)
    obs = env.reset(mask=mask, tasks=new)
    assert torch.equal(obs[~mask], before_obs[~mask]) and torch.equal(env.get_task()[~mask], before_task[~mask])
    assert torch.equal(env.get_task()[mask], new) and env.step_count.tolist() == [0, 3, 0, 3]
    fresh = make_env(name, 4, seed=0)
    if "Pendulum" not in name:                                     # deterministic start state
        assert torch.equal(obs[mask], fresh._obs()[mask])


@pytest.mark.parametrize("name", ALL)
def test_seeded_task_sampling_is_reproducible(name):
    a, b, c = make_env(name, 3, seed=7), make_env(name, 3, seed=7), make_env(name, 3, seed=8)
    ta, tb, tc = a.sample_tasks(40), b.sample_tasks(40), c.sample_tasks(40)
    assert torch.equal(ta, tb) and not torch.equal(ta, tc)
    assert torch.equal(a.get_task(), b.get_task()) and torch.equal(a.reset(), b.reset())


@pytest.mark.parametrize("name", ["Nav2DWideRing", "Nav2DDense", "DogFeeding"])
def test_plot_rollout_writes_png(name, tmp_path):
    env = make_env(name, 1)
    obs, pos, rew = [env.reset()[0]], [], []
    for _ in range(20):
        o, r, *_, info = env.step(torch.tensor([[0.1, 0.05]]))
        obs.append(o[0])
        pos.append(info["pos"][0])
        rew.append(r[0])
    trace = {"obs": torch.stack(obs).numpy(), "pos": torch.stack(pos).numpy(), "rewards": torch.stack(rew).numpy(),
             "actions": np.zeros((20, 2)), "task": env.get_task()[0].numpy(), "episode": np.repeat([0, 1], 10)}
    path = tmp_path / "r.png"
    env.plot_rollout(trace, str(path))
    assert path.stat().st_size > 1000


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("name", ALL)
def test_runs_on_gpu(name, tmp_path):
    env = make_env(name, 4, device="cuda")
    obs = env.reset(tasks=env.test_tasks()[:1].repeat(4, 1))
    obs, r, term, trunc, info = env.step(torch.zeros(4, *env.action_space.shape, device="cuda"))
    assert obs.device.type == r.device.type == env.sample_tasks(3).device.type == env.test_tasks().device.type == "cuda"
    if hasattr(env, "plot_rollout"):
        trace = {"obs": obs.cpu().numpy(), "pos": info["pos"][:1].cpu().numpy(), "rewards": r[:1].cpu().numpy(),
                 "task": env.get_task()[0].cpu().numpy(), "episode": np.zeros(1, dtype=int)}
        env.plot_rollout(trace, str(tmp_path / "r.png"))


def test_metaworld_without_the_package_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "metaworld", None)     # import metaworld -> ImportError
    with pytest.raises(ImportError, match="--no-deps metaworld==3.1.1"):
        make_env("MetaWorldML1", 1)
