"""Tests of the batched MuJoCo meta-envs (environments/mujoco)."""
import numpy as np
import pytest
import torch

pytest.importorskip("mujoco")

import os

import mujoco

from environments import make_env
from environments.mujoco.base import ASSETS
from environments.registry import ENVS

torch.set_num_threads(1)

ALL = {
    # name: (obs_dim, act_dim, task_dim, pos_dim)
    "HalfCheetahDir": (20, 6, 1, 1),
    "HalfCheetahVel": (20, 6, 1, 1),
    "HalfCheetahDirSparse": (21, 6, 1, 1),
    "AntDir": (27, 8, 1, 2),
    "AntGoal": (113, 8, 2, 2),
    "AntGoalSparse": (116, 8, 2, 2),
    "HumanoidDir": (376, 17, 1, 2),
    "Walker2DRandParams": (17, 6, 65, 1),
    "HopperRandParams": (11, 3, 41, 1),
}


def _zeros(env):
    return torch.zeros(env.num_envs, env.action_space.shape[0])


def _push(env, i, qpos_updates=None, qvel_updates=None):
    """Set some coordinates of copy i's state (others kept)."""
    d = env.datas[i]
    qpos, qvel = d.qpos.copy(), d.qvel.copy()
    for k, v in (qpos_updates or {}).items():
        qpos[k] = v
    for k, v in (qvel_updates or {}).items():
        qvel[k] = v
    env.set_state(i, qpos, qvel)


# ----- shapes / contract ------------------------------------------------------------------
@pytest.mark.parametrize("name", list(ALL))
def test_dims_dtypes_and_info(name):
    obs_dim, act_dim, task_dim, pos_dim = ALL[name]
    env = make_env(name, num_envs=3, seed=0, num_threads=1)
    assert name in ENVS
    assert env.obs_dim == obs_dim and env.action_space.shape == (act_dim,) and env.task_dim == task_dim
    assert env.max_episode_steps == 200
    obs = env.reset()
    assert obs.shape == (3, obs_dim) and obs.dtype == torch.float32
    assert env.get_task().shape == (3, task_dim)
    assert env.sample_tasks(5).shape == (5, task_dim)
    obs, r, term, trunc, info = env.step(torch.rand(3, act_dim) * 2 - 1)
    assert obs.shape == (3, obs_dim) and obs.dtype == torch.float32
    assert r.shape == (3,) and r.dtype == torch.float32 and torch.isfinite(r).all()
    assert term.dtype == torch.bool and trunc.dtype == torch.bool and term.shape == trunc.shape == (3,)
    assert info["pos"].shape == (3, pos_dim)
    for v in info.values():
        assert v.shape[0] == 3 and v.dtype == torch.float32
    env.close()


def test_truncation_at_time_limit():
    env = make_env("HalfCheetahDir", num_envs=2, seed=0, max_episode_steps=5, num_threads=1)
    env.reset()
    for t in range(5):
        *_, trunc, _ = env.step(_zeros(env))
        assert trunc.all() == (t == 4)
    env.reset_mdp()
    *_, trunc, _ = env.step(_zeros(env))
    assert not trunc.any()


# ----- rewards ------------------------------------------------------------------------------
def test_cheetah_dir_reward_sign_and_magnitude():
    env = make_env("HalfCheetahDir", num_envs=2, seed=0, num_threads=1)
    env.reset(tasks=torch.tensor([[1.0], [-1.0]]))
    for i in range(2):
        _push(env, i, qvel_updates={0: 4.0})
    _obs, r, _term, _trunc, info = env.step(_zeros(env))
    v = info["forward_vel"]
    assert (v > 2.0).all() and (v < 5.0).all()
    assert r[0] > 2.0 and r[1] < -2.0
    assert torch.allclose(r, torch.tensor([1.0, -1.0]) * v, atol=1e-5)
    # control cost 0.05 * |a|^2
    env.reset(tasks=torch.tensor([[1.0], [1.0]]))
    a = torch.zeros(2, 6)
    a[1] = 1.0
    _, r, _, _, info = env.step(a)
    assert torch.allclose(r - info["forward_vel"], torch.tensor([0.0, -0.3]), atol=1e-5)


def test_cheetah_vel_reward():
    env = make_env("HalfCheetahVel", num_envs=2, seed=0, num_threads=1)
    tasks = env.sample_tasks(2000)
    assert tasks.min() >= 0 and tasks.max() <= 3.0 and tasks.max() > 2.5  # U(0, 3) as the reference code
    env.reset(tasks=torch.tensor([[2.0], [0.0]]))
    for i in range(2):
        _push(env, i, qvel_updates={0: 2.0})
    _, r, _, _, info = env.step(_zeros(env))
    v = info["forward_vel"]
    assert torch.allclose(r, -(v - torch.tensor([2.0, 0.0])).abs(), atol=1e-5)
    assert r[0] > r[1] and r[1] < -1.0


def test_cheetah_dir_sparse_reward_and_belief():
    env = make_env("HalfCheetahDirSparse", num_envs=2, seed=0, num_threads=1)
    env.reset(tasks=torch.tensor([[1.0], [-1.0]]))
    assert env.belief_dim == 2 and torch.equal(env.get_belief(), torch.full((2, 2), 0.5))
    for i in range(2):
        _push(env, i, qvel_updates={0: 4.0})
    a = torch.full((2, 6), 0.5)
    _, r, _, _, info = env.step(a)
    ctrl = 0.05 * 6 * 0.25
    # inside |x| < 5: only the control cost, whatever the velocity
    assert torch.allclose(r, torch.full((2,), -ctrl), atol=1e-5)
    assert torch.equal(info["sparse_reward"], r)
    assert info["dense_reward"][0] > 1.0 and info["dense_reward"][1] < -1.0
    assert torch.equal(env.get_belief(), torch.full((2, 2), 0.5))
    # outside: dense reward, belief one-hot on the true direction (index 0 = -1, index 1 = +1)
    for i in range(2):
        _push(env, i, qpos_updates={0: 6.0}, qvel_updates={0: 4.0})
    _, r, _, _, info = env.step(a)
    assert torch.allclose(r, info["dense_reward"]) and r[0] > 1.0 and r[1] < -1.0
    assert torch.equal(env.get_belief(), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    # belief persists over MDP resets, returns to the prior on a task reset
    env.reset_mdp()
    assert torch.equal(env.get_belief(), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    env.reset(mask=torch.tensor([True, False]))
    assert torch.equal(env.get_belief(), torch.tensor([[0.5, 0.5], [1.0, 0.0]]))
    obs = env.reset()
    assert obs.shape == (2, 21)


@pytest.mark.parametrize("quirk", [False, True])
def test_ant_dir_reward_sign(quirk):
    env = make_env("AntDir", num_envs=2, seed=0, num_threads=1, angle_quirk=quirk)
    env.reset(tasks=torch.tensor([[1.0], [-1.0]]))
    for i in range(2):
        _push(env, i, qvel_updates={0: 3.0})
    _, r, term, _, info = env.step(_zeros(env))
    fwd = info["reward_forward"]
    if quirk:
        # the reference's directions (cos g, sin g) for g = +-1 rad both point forward-ish (+-57 deg):
        # pushing along +x is rewarded in both tasks, with weight cos(1) ~ 0.54
        assert 0.5 < fwd[0] < 0.8 * 3.0 and 0.5 < fwd[1] < 0.8 * 3.0
    else:
        assert fwd[0] > 1.5 and fwd[1] < -1.5
    # reward = forward - 0 ctrl - contact + 1 survive
    assert torch.allclose(r, fwd + info["reward_contact"] + 1.0, atol=1e-5)
    assert not term.any()


def test_ant_contact_forces_nonzero_on_ground():
    env = make_env("AntGoal", num_envs=2, seed=0, num_threads=1)
    env.reset()
    for _ in range(25):  # settle on the floor
        obs, _r, _, _, info = env.step(_zeros(env))
    cfrc = obs[:, 29:]
    assert (cfrc != 0).any(1).all()
    assert (info["reward_contact"] < 0).all()
    assert (cfrc.abs() <= 1.0).all()
    env2 = make_env("AntGoalSparse", num_envs=1, seed=0, num_threads=1)
    for _ in range(25):
        obs2, *_ = env2.step(_zeros(env2))
    assert (obs2[:, 32:] != 0).any()


def test_ant_goal_rewards():
    env = make_env("AntGoal", num_envs=2, seed=0, num_threads=1)
    env.reset()
    xy = torch.from_numpy(env.get_pos()).float()
    env.set_task(torch.tensor([True, True]), torch.stack([xy[0], xy[1] + torch.tensor([2.0, -1.0])]))
    _, r, _, _, info = env.step(_zeros(env))
    assert info["reward_goal"][0] > -0.2 and abs(info["reward_goal"][1] + 3.0) < 0.2  # L1 distance
    assert r[0] > r[1]

    env = make_env("AntGoalSparse", num_envs=2, seed=0, num_threads=1)
    env.reset()
    xy = torch.from_numpy(env.get_pos()).float()
    env.set_task(torch.tensor([True, True]), torch.stack([xy[0], xy[1] + torch.tensor([2.0, 0.0])]))
    _, r, _, _, info = env.step(_zeros(env))
    assert info["success"].tolist() == [1.0, 0.0]
    assert 0.7 < r[0] <= 1.0
    assert -0.8 < r[1] <= -0.75
    assert torch.equal(info["sparse_reward"], r) and info["dense_reward"][1] < -1.9


def test_ant_goal_task_distribution():
    env = make_env("AntGoal", num_envs=1, seed=0)
    g = env.sample_tasks(5000)
    r = g.norm(dim=1)
    assert r.max() <= 3.0 + 1e-5
    assert abs((r < 1.5).float().mean() - 0.25) < 0.03  # r = 3 sqrt(U): uniform over the disk


def test_humanoid_dir_reward_and_termination():
    env = make_env("HumanoidDir", num_envs=2, seed=0, num_threads=1)
    env.reset(tasks=torch.tensor([[0.0], [np.pi]]))
    for i in range(2):
        _push(env, i, qvel_updates={0: 1.0})
    _, r, term, _, info = env.step(_zeros(env))
    lin = info["reward_linvel"]
    # PEARL: 0.25 * displacement / timestep -> ~ 0.25 * 1 m/s * frame_skip = ~1.25
    assert lin[0] > 0.5 and lin[1] < -0.5
    assert torch.allclose(r, lin + info["reward_quadctrl"] + info["reward_impact"] + 5.0, atol=1e-4)
    assert not term.any()
    # action rescaling: ctrl cost of a = 1 is 0.1 * 17 * 0.4^2
    env.reset_mdp()
    _, _, _, _, info = env.step(torch.ones(2, 17))
    assert torch.allclose(info["reward_quadctrl"], torch.full((2,), -0.1 * 17 * 0.16), atol=1e-5)
    _push(env, 1, qpos_updates={2: 0.8})
    _, _, term, _, _ = env.step(_zeros(env))
    assert term.tolist() == [False, True]


@pytest.mark.parametrize("name", ["Walker2DRandParams", "HopperRandParams"])
def test_rand_params_reward_and_fall(name):
    env = make_env(name, num_envs=2, seed=0, num_threads=1)
    env.reset(tasks=torch.zeros(2, env.task_dim))
    assert abs(env.dt - 0.016) < 1e-12
    _push(env, 0, qvel_updates={0: 2.0})
    _, r, term, _, info = env.step(_zeros(env))
    assert r[0] > 2.0 and abs(r[1] - 1.0) < 0.2  # velocity + 1 alive bonus
    assert torch.allclose(r, info["forward_vel"] + 1.0, atol=1e-5)
    assert not term.any()
    _push(env, 1, qpos_updates={1: 0.5})  # torso far too low: fallen
    _, r, term, _, _ = env.step(_zeros(env))
    assert term.tolist() == [False, True]


# ----- physics parameters -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["Walker2DRandParams", "HopperRandParams"])
def test_rand_params_task_changes_do_not_compound(name):
    env = make_env(name, num_envs=2, seed=0, num_threads=1)
    m = env.models[0]
    keys = ["body_mass", "body_inertia", "dof_damping", "geom_friction", "body_subtreemass", "dof_invweight0"]
    fresh = mujoco.MjModel.from_xml_path(os.path.join(ASSETS, env.xml_file))
    default = {k: getattr(fresh, k).copy() for k in keys}
    one = torch.tensor([True, False])
    task_a, task_b = env.sample_tasks(1), env.sample_tasks(1)
    env.set_task(one, task_a)
    after_a = {k: getattr(m, k).copy() for k in keys}
    env.set_task(one, task_b)
    after_b = {k: getattr(m, k).copy() for k in keys}
    env.set_task(one, task_a)
    for k in keys:
        assert np.array_equal(getattr(m, k), after_a[k]), k
    assert not np.allclose(after_a["body_mass"][1:], after_b["body_mass"][1:])
    assert not np.allclose(after_a["body_mass"][1:], default["body_mass"][1:])
    # parameters follow the formula from the pristine defaults; mj_setConst refreshed derived constants
    exps = task_a[0].double().numpy()
    nb = m.nbody
    assert np.allclose(m.body_mass, default["body_mass"] * 1.5 ** exps[:nb])
    assert np.isclose(m.body_subtreemass[0], m.body_mass.sum())
    # the zero task restores the defaults; copy 1 (not in the mask) keeps its own parameters
    env.set_task(one, torch.zeros(1, env.task_dim))
    for k in keys:
        assert np.allclose(getattr(m, k), default[k]), k
    assert env.models[1] is not env.models[0]
    assert torch.equal(env.get_task()[0], torch.zeros(env.task_dim))


def test_rand_params_change_dynamics():
    env = make_env("Walker2DRandParams", num_envs=2, seed=0, num_threads=1)
    tasks = torch.zeros(2, env.task_dim)
    tasks[1, : env.model.nbody] = 3.0  # all masses x 1.5^3
    env.reset(tasks=tasks)
    for i in range(2):
        env.set_state(i, env.init_qpos, np.zeros(env.model.nv))
    a = torch.ones(2, 6) * 0.5
    for _ in range(5):
        obs, *_ = env.step(a)
    assert not torch.allclose(obs[0], obs[1], atol=1e-3)


# ----- determinism / partial resets / termination -------------------------------------------
@pytest.mark.parametrize("name", ["HalfCheetahDir", "AntGoal", "Walker2DRandParams"])
def test_same_seed_same_trajectories(name):
    def rollout(seed, threads):
        env = make_env(name, num_envs=4, seed=seed, num_threads=threads)
        g = torch.Generator().manual_seed(0)
        obs = [env.reset()]
        rews = []
        for _ in range(15):
            o, r, term, trunc, _ = env.step(torch.rand(4, env.action_space.shape[0], generator=g) * 2 - 1)
            if (term | trunc).any():
                o = env.reset_mdp(term | trunc)
            obs.append(o)
            rews.append(r)
        out = torch.stack(obs), torch.stack(rews), env.get_task()
        env.close()
        return out

    a, b, c = rollout(3, 1), rollout(3, 2), rollout(4, 1)
    auto = rollout(3, None)  # default: probes 1 and 2 threads alternately during the first steps
    for x, y, z in zip(a, b, auto):
        assert torch.equal(x, y) and torch.equal(x, z)
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[2], c[2])


@pytest.mark.parametrize("name", ["HalfCheetahDirSparse", "AntDir", "HopperRandParams"])
def test_partial_reset_leaves_other_copies_untouched(name):
    n = 4
    ref = make_env(name, num_envs=n, seed=1, num_threads=1)
    env = make_env(name, num_envs=n, seed=1, num_threads=2)
    g = torch.Generator().manual_seed(0)
    acts = [torch.rand(n, env.action_space.shape[0], generator=g) * 0.2 - 0.1 for _ in range(12)]
    for t in range(6):
        o_ref, *_ = ref.step(acts[t])
        o_env, *_ = env.step(acts[t])
    assert torch.equal(o_ref, o_env)
    mask = torch.tensor([True, False, True, False])
    tasks_before = env.get_task().clone()
    steps_before = env.step_count.clone()
    obs = env.reset(mask=mask)
    keep = ~mask
    assert torch.equal(obs[keep], o_ref[keep])
    assert torch.equal(env.get_task()[keep], tasks_before[keep])
    assert torch.equal(env.step_count[keep], steps_before[keep]) and (env.step_count[mask] == 0).all()
    assert not torch.equal(obs[mask], o_ref[mask])
    for t in range(6, 12):
        o_ref, r_ref, *_ = ref.step(acts[t])
        o_env, r_env, *_ = env.step(acts[t])
        assert torch.equal(o_ref[keep], o_env[keep]) and torch.equal(r_ref[keep], r_env[keep])
    # reset_mdp keeps the task
    tasks = env.get_task().clone()
    env.reset_mdp(mask)
    assert torch.equal(env.get_task(), tasks)
    ref.close()
    env.close()


def test_early_termination_is_sticky_until_reset():
    env = make_env("AntDir", num_envs=3, seed=0, num_threads=1)
    env.reset()
    _push(env, 1, qpos_updates={2: 1.5})  # torso too high
    obs, r, term, _, _ = env.step(_zeros(env))
    assert term.tolist() == [False, True, False]
    frozen = obs[1].clone()
    for _ in range(3):
        obs, r, term, _, _info = env.step(torch.ones(3, 8))
        assert term.tolist() == [False, True, False]
        assert r[1] == 0.0 and torch.equal(obs[1], frozen)
    obs = env.reset_mdp(term)
    obs, r, term, _, _ = env.step(_zeros(env))
    assert not term.any()


def test_walker_fall_terminates_and_stays():
    env = make_env("Walker2DRandParams", num_envs=2, seed=0, num_threads=1)
    _push(env, 0, qpos_updates={2: 1.3})  # torso tilted beyond 1 rad
    _, _, term, _, _ = env.step(_zeros(env))
    assert term.tolist() == [True, False]
    _, r, term, _, _ = env.step(_zeros(env))
    assert term.tolist() == [True, False] and r[0] == 0.0
    env.reset(mask=term)
    _, _, term, _, _ = env.step(_zeros(env))
    assert not term.any()


# ----- plots ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["HalfCheetahDirSparse", "AntGoalSparse", "AntDir", "HumanoidDir"])
def test_plot_rollout_writes_file(name, tmp_path):
    pytest.importorskip("matplotlib")
    env = make_env(name, num_envs=1, seed=0, num_threads=1)
    pos = [env.get_pos()[0]]
    for _ in range(6):
        *_, info = env.step(torch.rand(1, env.action_space.shape[0]) * 2 - 1)
        pos.append(info["pos"][0].numpy())
    rollout = {"pos": np.stack(pos), "episode": np.array([0, 0, 0, 1, 1, 1]), "task": env.get_task()[0].numpy(),
               "rewards": np.zeros(6), "obs": np.zeros((7, env.obs_dim)), "actions": np.zeros((6, 1))}
    path = tmp_path / f"{name}.png"
    env.plot_rollout(rollout, str(path))
    assert path.exists() and path.stat().st_size > 1000


@pytest.mark.parametrize("name", ["HalfCheetahDirSparse", "AntDir", "HopperRandParams"])
def test_state_dict_continues_exactly(name):
    env = make_env(name, num_envs=3, seed=0, num_threads=1)
    g = torch.Generator().manual_seed(0)
    acts = [torch.rand(3, env.action_space.shape[0], generator=g) * 2 - 1 for _ in range(16)]

    def run(e, steps):
        out = []
        for a in steps:
            o, r, term, trunc, _ = e.step(a)
            if (term | trunc).any():
                o = e.reset_mdp(term | trunc)
            out.append(torch.cat([o, r[:, None], term[:, None].float()], 1))
        reset_obs = e.reset(mask=torch.tensor([True, False, False]))  # task sampling continues too
        return torch.cat(out), torch.cat([reset_obs.flatten(), e.get_task().flatten()])

    run(env, acts[:8])
    state = env.state_dict()
    first = run(env, acts[8:])
    other = make_env(name, num_envs=3, seed=123, num_threads=1)  # different seed: everything is overwritten
    other.load_state_dict(state)
    second = run(other, acts[8:])
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    if name == "HopperRandParams":
        assert np.array_equal(env.models[1].body_mass, other.models[1].body_mass)


def test_mj_step_releases_the_gil():
    """The 2-thread stepping relies on mujoco.mj_step releasing the GIL: while a worker thread is
    inside one long mj_step call (~0.1-0.5 s), the main thread must keep running Python code. With
    the GIL held it could run at most one switch interval (5 ms) before the call."""
    import threading
    import time

    m = mujoco.MjModel.from_xml_path(os.path.join(ASSETS, "half_cheetah.xml"))
    d = mujoco.MjData(m)
    finished = threading.Event()
    span = {}

    def work():
        t0 = time.perf_counter()
        mujoco.mj_step(m, d, nstep=20000)
        span["t"] = time.perf_counter() - t0
        finished.set()

    t = threading.Thread(target=work)
    count, t0 = 0, time.perf_counter()
    t.start()
    while not finished.is_set():
        count += 1
    main_time = time.perf_counter() - t0
    t.join()
    # per-iteration cost of the same loop without a competing thread
    probe, k, c0 = threading.Event(), 0, time.perf_counter()
    while k < 200000 and not probe.is_set():
        k += 1
    per_iter = (time.perf_counter() - c0) / k
    busy = count * per_iter  # seconds of Python work the main thread did meanwhile
    assert span["t"] > 0.02
    assert busy > 0.25 * min(span["t"], main_time) and busy > 0.02
