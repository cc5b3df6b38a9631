"""Contextual DMC tasks: the mujoco-4 shim, the length edit, the margin reward and batched
stepping against single-copy dm_control."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("dm_control")

from environments.contextual import dmc_compat  # noqa: E402  (applies the shim)
from environments.contextual.envs import (ContextualCheetahRun, ContextualFingerSpin,  # noqa: E402
                                          ContextualWalkerWalk, speed_reward)
from environments.contextual.models import DEFAULT_LENGTH, get_model, model_xml  # noqa: E402


def test_shim_needed_and_applied():
    import mujoco

    removed = dmc_compat.REMOVED
    if int(mujoco.__version__.split(".")[0]) >= 4:
        assert "flex_vertedge" in removed["mjmodel"] and "flexvert_J" in removed["mjdata"]
        assert len(removed["mjmodel"]) + len(removed["mjdata"]) == 9
    assert dmc_compat.missing_fields() == {"mjmodel": [], "mjdata": []}  # nothing left to drop
    from dm_control import suite

    env = suite.load("cheetah", "run", task_kwargs={"random": 0})
    ts = env.reset()
    assert ts.observation["position"].shape == (8,)


def _suite_model(domain):
    import mujoco

    xml, assets = model_xml(domain, None)
    return mujoco.MjModel.from_xml_string(xml, assets)


@pytest.mark.parametrize("domain", ["cheetah", "walker", "finger"])
def test_default_length_is_the_suite_model(domain):
    ours, suite_m = get_model(domain, DEFAULT_LENGTH[domain]), _suite_model(domain)
    for field in ("geom_size", "geom_pos", "body_pos", "body_mass", "body_inertia", "site_pos"):
        np.testing.assert_array_equal(getattr(ours, field), getattr(suite_m, field), err_msg=field)


def test_length_edits_geometry():
    m = get_model("cheetah", 0.7)
    assert m.geom("torso").size[1] == pytest.approx(0.7)
    assert m.body("bthigh").pos[0] == pytest.approx(-0.7) and m.body("fthigh").pos[0] == pytest.approx(0.7)
    assert m.geom("head").pos[0] == pytest.approx(0.8)
    assert m.body_mass[m.body("torso").id] > get_model("cheetah", 0.5).body_mass[m.body("torso").id]
    w = get_model("walker", 0.4)
    assert w.geom("torso").size[1] == pytest.approx(0.4)
    np.testing.assert_array_equal(w.body("right_thigh").pos, get_model("walker", 0.3).body("right_thigh").pos)
    f = get_model("finger", 0.2)
    assert f.geom("distal").size[1] == pytest.approx(0.1)  # capsule half-length of a 0.2 segment
    assert f.body("spinner").pos[0] == pytest.approx(0.24) and f.geom("cap1").size[1] == pytest.approx(0.13)
    assert get_model("cheetah", 0.7) is m  # one model per distinct geometry


def test_speed_reward_is_tolerance_with_the_margin():
    from dm_control.utils.rewards import tolerance

    v = np.linspace(-12, 12, 49)
    for margin in (10.0, 2.5, -3.0):
        got = speed_reward(v, np.full_like(v, margin), 0.1)
        want = np.array([tolerance((-1 if margin < 0 else 1) * x, bounds=(abs(margin), np.inf), margin=abs(margin),
                                   sigmoid="linear", value_at_margin=0.1) for x in v])
        np.testing.assert_array_equal(got, want)
    # known values: margin 2 -> reward 1 at v >= 2, 0.1 at v = 0, linear in between; negative flips
    np.testing.assert_allclose(speed_reward(np.array([2.0, 0.0, 1.0, -2.0]), np.full(4, 2.0), 0.1), [1, 0.1, 0.55, 0])
    np.testing.assert_allclose(speed_reward(np.array([-2.0, 2.0]), np.full(2, -2.0), 0.1), [1, 0])
    # dm_control's own cheetah-run = margin 10, value_at_margin 0
    np.testing.assert_array_equal(speed_reward(v, np.full_like(v, 10.0), 0.0),
                                  [tolerance(x, bounds=(10, np.inf), margin=10, value_at_margin=0, sigmoid="linear")
                                   for x in v])


def _reference_env(cls, margin, length, seed):
    """A single-copy dm_control Environment with the same model, start RNG and reward."""
    from dm_control.rl import control
    from dm_control.suite import cheetah, finger, walker
    from dm_control.utils.rewards import tolerance

    domain = cls.domain
    xml, assets = model_xml(domain, length)
    sign, m = (-1.0 if margin < 0 else 1.0), abs(margin)
    if domain == "cheetah":
        physics = cheetah.Physics.from_xml_string(xml, assets)

        class Task(cheetah.Cheetah):
            def get_reward(self, physics):
                return tolerance(sign * physics.speed(), bounds=(m, np.inf), margin=m, sigmoid="linear",
                                 value_at_margin=0.1)
        task, steps = Task(random=seed), None
    elif domain == "walker":
        physics = walker.Physics.from_xml_string(xml, assets)

        class Task(walker.PlanarWalker):
            def get_reward(self, physics):
                standing = tolerance(physics.torso_height(), bounds=(1.2, np.inf), margin=0.6)
                stand = (3 * standing + (1 + physics.torso_upright()) / 2) / 4
                move = tolerance(sign * physics.horizontal_velocity(), bounds=(m, np.inf), margin=m, sigmoid="linear",
                                 value_at_margin=0.5)
                return stand * (5 * move + 1) / 6
        task, steps = Task(move_speed=1, random=seed), walker._CONTROL_TIMESTEP
    else:
        physics = finger.Physics.from_xml_string(xml, assets)

        class Task(finger.Spin):
            def get_reward(self, physics):
                return tolerance(sign * physics.hinge_velocity(), bounds=(m, np.inf), margin=m, sigmoid="linear",
                                 value_at_margin=0.1)
        task, steps = Task(random=seed), finger._CONTROL_TIMESTEP
    return control.Environment(physics, task, time_limit=float("inf"), control_timestep=steps, flat_observation=True)


@pytest.mark.parametrize("cls,contexts", [
    (ContextualCheetahRun, [(10.0, 0.5), (-3.0, 0.35), (2.0, 0.65)]),
    (ContextualWalkerWalk, [(0.5, 0.3), (-1.0, 0.25), (2.0, 0.4)]),
    (ContextualFingerSpin, [(15.0, 0.16), (-5.0, 0.2), (8.0, 0.13)]),
])
def test_batched_step_equals_single_dm_control(cls, contexts):
    margins = sorted({c[0] for c in contexts})
    lengths = sorted({c[1] for c in contexts})
    env = cls(num_envs=len(contexts), seed=3, margins=margins, lengths=lengths)
    env.rngs = [np.random.RandomState(s) for s in env.copy_seeds]  # restart the start RNGs
    obs = env.reset(tasks=torch.tensor(contexts))
    refs = [_reference_env(cls, m, length, seed) for (m, length), seed in zip(contexts, env.copy_seeds)]
    first = []
    for ref in refs:
        first.append(ref.reset().observation["observations"])
    # the same start procedure and random draws: identical starts
    np.testing.assert_array_equal(obs.numpy(), np.stack(first).astype(np.float32))
    rng = np.random.default_rng(0)
    for _ in range(60):
        a = rng.uniform(-1, 1, size=(len(contexts), env.nu))
        obs, rew, term, trunc, _ = env.step(torch.from_numpy(a))
        for i, ref in enumerate(refs):
            ts = ref.step(a[i])
            np.testing.assert_array_equal(obs[i].numpy(), ts.observation["observations"].astype(np.float32))
            assert rew[i].item() == np.float32(ts.reward)
            assert ts.discount == 1.0 and not term[i]
    for i, ref in enumerate(refs):  # float64 physics state bit-identical after 60 steps
        np.testing.assert_array_equal(env.datas[i].qpos, ref.physics.data.qpos)
        np.testing.assert_array_equal(env.datas[i].qvel, ref.physics.data.qvel)
    assert len({id(m) for m in env.models}) == len(set(c[1] for c in contexts))  # one MjModel per geometry


def test_task_vector_sampling_and_state_dict():
    env = ContextualCheetahRun(num_envs=3, seed=0, margins=[1.0, -2.0], lengths=[0.4, 0.6], max_episode_steps=5)
    tasks = env.get_task().numpy()
    assert set(tasks[:, 0]) <= {1.0, -2.0} and set(np.round(tasks[:, 1].astype(np.float64), 6)) <= {0.4, 0.6}
    assert env.task_dim == 2 and env.obs_dim == 17 and env.nu == 6
    a = torch.zeros(3, 6)
    for _ in range(2):
        env.step(a)
    state = env.state_dict()
    after = [env.step(a + 0.3) for _ in range(3)]
    env2 = ContextualCheetahRun(num_envs=3, seed=99, margins=[1.0, -2.0], lengths=[0.4, 0.6], max_episode_steps=5)
    env2.load_state_dict(state)
    again = [env2.step(a + 0.3) for _ in range(3)]
    for x, y in zip(after, again):
        torch.testing.assert_close(x[0], y[0], rtol=0, atol=0)
        torch.testing.assert_close(x[1], y[1], rtol=0, atol=0)
    assert after[-1][3].all()  # truncated at max_episode_steps
    with pytest.raises(ValueError):
        ContextualCheetahRun(num_envs=1, margins=[0.0])


def test_cheetah_with_suite_reward_parameters_is_suite_cheetah_run():
    """margin 10, value_at_margin 0 = dm_control's own cheetah-run: same starts, observations, rewards."""
    from dm_control import suite

    env = ContextualCheetahRun(num_envs=2, seed=5, margins=[10.0], value_at_margin=0.0)
    env.rngs = [np.random.RandomState(s) for s in env.copy_seeds]
    obs = env.reset()
    refs = [suite.load("cheetah", "run", task_kwargs={"random": s}, environment_kwargs={"flat_observation": True})
            for s in env.copy_seeds]
    np.testing.assert_array_equal(obs.numpy(), np.stack([r.reset().observation["observations"] for r in refs]).astype(np.float32))
    rng = np.random.default_rng(1)
    total = np.zeros(2)
    for _ in range(100):
        a = rng.uniform(-1, 1, size=(2, 6))
        obs, rew, *_ = env.step(torch.from_numpy(a))
        for i, ref in enumerate(refs):
            ts = ref.step(a[i])
            np.testing.assert_array_equal(obs[i].numpy(), ts.observation["observations"].astype(np.float32))
            assert rew[i].item() == np.float32(ts.reward)
            total[i] += ts.reward
    assert (total > 0).all()  # the reward is not trivially zero on these random actions
