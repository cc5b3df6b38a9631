"""Meta-World v3 adapter (needs the optional ``metaworld`` package; skipped without it).

Known answers: the mocap-weld patch writes Meta-World's 11 numbers into MuJoCo's longer
rows; a scripted P-controller reaches the (hidden) reach goal and flips ``success``;
same task + same seed gives the same trajectory; task vectors map to the right classes.
"""
import numpy as np
import pytest
import torch

metaworld = pytest.importorskip("metaworld")

import mujoco  # noqa: E402

from environments import make_env  # noqa: E402
from environments.metaworld_adapter import _WELD_ROW  # noqa: E402


@pytest.fixture(scope="module")
def ml1():
    return make_env("MetaWorldML1", 2, seed=0, max_episode_steps=200)


def test_weld_rows_padded_to_mujoco_length(ml1):
    model = ml1.envs[0].unwrapped.active.model
    welds = [i for i in range(model.neq) if model.eq_type[i] == mujoco.mjtEq.mjEQ_WELD]
    assert welds and model.eq_data.shape[1] == mujoco.mjNEQDATA
    for i in welds:
        assert np.allclose(model.eq_data[i, : len(_WELD_ROW)], _WELD_ROW) and not model.eq_data[i, len(_WELD_ROW):].any()


def test_shapes_task_vectors_and_test_tasks(ml1):
    assert ml1.obs_dim == 39 and ml1.action_space.shape == (4,) and ml1.task_dim == 2 and ml1.num_tasks == 100
    tasks = ml1.sample_tasks(200)
    assert (tasks[:, 0] == 0).all() and (tasks[:, 1] < 50).all() and len(tasks[:, 1].unique()) > 40
    test = ml1.test_tasks()
    assert test.shape == (10, 2) and (test[:, 1] >= 50).all()
    assert torch.equal(ml1.task_to_id(test), test[:, 1].long())


def test_scripted_reach_succeeds_and_other_copy_keeps_its_task(ml1):
    task = ml1.sample_tasks(1).repeat(2, 1)
    obs = ml1.reset(tasks=task)
    assert obs.shape == (2, 39) and obs.dtype == torch.float32
    mw = [e.unwrapped.active for e in ml1.envs]
    goal = mw[0]._target_pos.copy()
    assert np.allclose(goal, mw[1]._target_pos)
    success = torch.zeros(2)
    for _ in range(150):
        hand = obs[:, :3].numpy()
        act = np.zeros((2, 4), dtype=np.float32)
        act[0, :3] = np.clip(10 * (goal - hand[0]), -1, 1)       # copy 0 drives to the goal, copy 1 idles
        obs, r, term, trunc, info = ml1.step(torch.from_numpy(act))
        success = torch.maximum(success, info["success"])
    assert success.tolist() == [1.0, 0.0]
    assert np.linalg.norm(obs[0, :3].numpy() - goal) < 0.05


def test_same_seed_same_trajectory_and_time_limit():
    a, b = (make_env("MetaWorldML1", 1, seed=3, max_episode_steps=5) for _ in range(2))
    ta = a.sample_tasks(1)
    assert torch.equal(ta, b.sample_tasks(1))
    oa, ob = a.reset(tasks=ta), b.reset(tasks=ta)
    assert torch.equal(oa, ob)
    act = torch.tensor([[0.5, -0.3, 0.2, 0.0]])
    for t in range(5):
        oa, ra, _, trunc, _ = a.step(act)
        ob, rb, *_ = b.step(act)
        assert torch.equal(oa, ob) and torch.equal(ra, rb) and bool(trunc.all()) == (t == 4)


def test_ml10_switches_classes_per_copy():
    env = make_env("MetaWorldML10", 2, seed=0, max_episode_steps=10)
    assert len(env.class_names) == 15 and env.test_tasks().shape == (5, 2)
    test = env.test_tasks()
    env.reset(tasks=test[:2])
    names = [env.envs[i].unwrapped.active.__class__.__name__ for i in range(2)]
    expected = [env.class_names[int(c)] for c in test[:2, 0]]
    assert names[0] != names[1] and [env.mw_tasks[int(i)].env_name for i in test[:2, 1]] == expected
    obs, r, *_ = env.step(torch.zeros(2, 4))
    assert obs.shape == (2, 39) and torch.isfinite(r).all()


def test_checkpoint_continues_exactly():
    """Meta-World's own pickling drops the mocap targets and warm start; ours keeps them."""
    env = make_env("MetaWorldML1", 2, seed=0, max_episode_steps=50)
    act = torch.tensor([[0.3, 0.1, -0.2, 0.0], [-0.4, 0.2, 0.1, 0.5]])
    for _ in range(3):
        env.step(act)
    state = env.state_dict()
    assert state["envs"] is not None
    first = [env.step(act)[:2] for _ in range(3)]
    env.load_state_dict(state)
    again = [env.step(act)[:2] for _ in range(3)]
    for (o1, r1), (o2, r2) in zip(first, again):
        assert torch.equal(o1, o2) and torch.equal(r1, r2)
