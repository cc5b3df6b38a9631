"""Known-answer tests of the HyperX navigation envs (TreasureHunt, RoomNavi)."""
import math

import numpy as np
import pytest
import torch

from environments.navigation.rooms import RoomNavi
from environments.navigation.treasure_hunt import TreasureHunt

torch.set_num_threads(1)

NOOP, UP, RIGHT, DOWN, LEFT = range(5)


# ----- TreasureHunt ---------------------------------------------------------------------
def _treasure(n=1, goal=(1.0, 0.0)):
    env = TreasureHunt(n, seed=0)
    obs = env.reset(tasks=torch.tensor([goal] * n))
    return env, obs


def _act(env, a):
    return env.step(torch.tensor([a] * env.num_envs, dtype=torch.float32))


def test_treasure_reset_and_spaces():
    env, obs = _treasure(3)
    assert obs.shape == (3, 4)
    assert torch.allclose(obs, torch.tensor([[0.0, -1.0, 0.0, 0.0]] * 3))
    assert env.task_dim == 2 and env.max_episode_steps == 100
    tasks = env.sample_tasks(1000)
    assert torch.allclose(tasks.norm(dim=1), torch.ones(1000), atol=1e-5)
    angles = torch.atan2(tasks[:, 1], tasks[:, 0])
    assert (angles < -math.pi / 2).any() and (angles > math.pi / 2).any()  # full circle


def test_treasure_climbing_the_mountain_reveals_the_goal():
    env, _ = _treasure(goal=(0.6, 0.8))
    rewards, obs_seen = [], []
    for _ in range(10):
        obs, r, *_ = _act(env, (0.0, 1.0))
        rewards.append(float(r[0]))
        obs_seen.append(obs[0])
    # step 1 at (0, -0.9): off the mountain -> -5 * max(1, 0.9) = -5
    assert rewards[0] == pytest.approx(-5.0)
    # step 7 at (0, -0.3): on the mountain -> (0.3 - 0.5) - 5
    assert rewards[6] == pytest.approx(-5.2, abs=1e-4)
    # step 10 at the top (0, 0): (0 - 0.5) - 5, and the goal is observed
    assert rewards[9] == pytest.approx(-5.5, abs=1e-4)
    assert torch.allclose(obs_seen[9], torch.tensor([0.0, 0.0, 0.6, 0.8]), atol=1e-5)
    assert torch.equal(obs_seen[4][2:], torch.zeros(2))  # (0, -0.5): goal hidden
    # walking off the top hides it again
    obs, *_ = _act(env, (1.0, 0.0))
    assert torch.equal(obs[0, 2:], torch.zeros(2))


def test_treasure_reward_success_and_bounds():
    env, _ = _treasure(goal=(1.0, 0.0))
    for _ in range(9):
        _, r, _, _, info = _act(env, (1.0, 1.0))  # diagonal from (0,-1) towards (1,0)
    assert float(r[0]) == pytest.approx(-5.0) and float(info["success"][0]) == 0.0  # 0.14 away
    _, r, _, _, info = _act(env, (1.0, 1.0))
    assert torch.allclose(info["pos"][0], torch.tensor([1.0, 0.0]), atol=1e-5)
    assert float(r[0]) == 10.0 and float(info["success"][0]) == 1.0
    # step far away: penalty grows with the distance, positions are clipped to +-1.5
    for _ in range(20):
        _, r, term, _, info = _act(env, (5.0, -5.0))  # actions are clipped to [-1, 1]
    assert torch.allclose(info["pos"][0], torch.tensor([1.5, -1.5]))
    assert float(r[0]) == pytest.approx(-5.0 * math.sqrt(4.5), rel=1e-5)
    assert float(info["success"][0]) == 0.0 and not term.any()


def test_treasure_batched_independent_copies_and_time_limit():
    env = TreasureHunt(2, seed=3)
    env.reset(tasks=torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    acts = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    for t in range(100):
        obs, _, _, trunc, _ = env.step(acts)
        assert bool(trunc.all()) == (t == 99)
    assert torch.allclose(obs[0], torch.tensor([0.0, 1.5, 0.0, 0.0]), atol=1e-5)
    assert torch.allclose(obs[1], torch.tensor([0.0, -1.0, 0.0, 0.0]))
    obs = env.reset_mdp(torch.tensor([True, False]))
    assert torch.allclose(obs[0], torch.tensor([0.0, -1.0, 0.0, 0.0]))
    assert env.step_count.tolist() == [0, 100]


def test_treasure_task_sampling_uses_own_generator():
    a, b = TreasureHunt(4, seed=5), TreasureHunt(4, seed=5)
    torch.manual_seed(0)
    ta = a.sample_tasks(3)
    torch.manual_seed(1)
    assert torch.equal(ta, b.sample_tasks(3))


# ----- RoomNavi ------------------------------------------------------------------------
TASK = (1, 1, 7, -1, -1, -1)  # G1 top-right of the middle room, G2 in the right room


def _rooms(task=TASK, **kw):
    env = RoomNavi(1, seed=0, **kw)
    env.reset(tasks=torch.tensor([task], dtype=torch.float32))
    return env


def _run(env, actions):
    out = []
    for a in actions:
        obs, r, _, _, info = env.step(torch.tensor([a]))
        out.append((obs[0].tolist(), float(r[0]), info))
    return out


def test_rooms_goals_in_order_pay_1_10_100():
    env = _rooms()
    path = [UP, RIGHT] + [DOWN] + [RIGHT] * 6 + [DOWN] + [UP] + [LEFT] * 8 + [DOWN]
    out = _run(env, path)
    rewards = [r for _, r, _ in out]
    assert out[1][0] == [1.0, 1.0] and out[9][0] == [7.0, -1.0] and out[-1][0] == [-1.0, -1.0]
    paid = [(i, r) for i, r in enumerate(rewards) if r != pytest.approx(-0.1)]
    assert paid == [(1, 1.0), (9, 10.0), (len(path) - 1, 100.0)]
    stages = [float(info["stage"][0]) for _, _, info in out]
    assert stages[0] == 0 and stages[1] == 1 and stages[9] == 2 and stages[-1] == 3
    assert float(out[-2][2]["success"][0]) == 0.0 and float(out[-1][2]["success"][0]) == 1.0


def test_rooms_out_of_order_visits_pay_nothing():
    env = _rooms()
    # G3 and G2 before G1 pay nothing; after G1, G3 still pays nothing before G2
    out = _run(env, [DOWN, LEFT])                       # (-1,-1) = G3 before G1, G2
    assert [r for _, r, _ in out] == pytest.approx([-0.1, -0.1])
    out = _run(env, [UP] + [RIGHT] * 8 + [DOWN])        # to G2 = (7,-1) before G1
    assert out[-1][0] == [7.0, -1.0] and out[-1][1] == pytest.approx(-0.1)
    assert float(out[-1][2]["stage"][0]) == 0
    out = _run(env, [UP] + [LEFT] * 6 + [UP])           # now G1 (1,1): +1
    assert out[-1][0] == [1.0, 1.0] and out[-1][1] == 1.0
    out = _run(env, [LEFT, LEFT, DOWN, DOWN])           # G3 (-1,-1) before G2: still nothing
    assert out[-1][0] == [-1.0, -1.0] and out[-1][1] == pytest.approx(-0.1)
    assert float(out[-1][2]["stage"][0]) == 1


def test_rooms_rewards_repeat_unless_disabled_and_reset_per_episode():
    env = _rooms()
    rs = [r for _, r, _ in _run(env, [UP, RIGHT, NOOP, NOOP])]
    assert rs == pytest.approx([-0.1, 1.0, 1.0, 1.0])  # reference: paid on every step there
    env = _rooms(repeat_goal_rewards=False)
    rs = [r for _, r, _ in _run(env, [UP, RIGHT, NOOP, NOOP])]
    assert rs == pytest.approx([-0.1, 1.0, -0.1, -0.1])
    env.reset_mdp()  # new episode: progress is forgotten
    assert env.reached.sum() == 0 and env.pos.tolist() == [[0, 0]]


def test_rooms_walls_and_corridors():
    env = _rooms()
    out = _run(env, [RIGHT, RIGHT, UP, DOWN])  # into the corridor; up/down blocked there
    assert [o for o, _, _ in out] == [[1.0, 0.0], [2.0, 0.0], [2.0, 0.0], [2.0, 0.0]]
    env = _rooms()
    out = _run(env, [UP, UP, RIGHT, RIGHT])  # top wall; from (1,1) the corridor is not reachable
    assert [o for o, _, _ in out][-1] == [1.0, 1.0]
    env = _rooms()
    out = _run(env, [LEFT] * 10)  # through the left corridor to the far wall
    assert out[-1][0] == [-7.0, 0.0]
    assert env.observation_space.contains(np.array(out[-1][0], dtype=np.float32))


def test_rooms_task_distribution_and_ids():
    env = RoomNavi(16, seed=2)
    assert env.num_tasks == 48 and env.task_dim == 6 and env.num_states == 33
    tasks = env.sample_tasks(4000).long()
    g1, g2, g3 = tasks[:, :2], tasks[:, 2:4], tasks[:, 4:]
    assert (g1.abs() == 1).all() and (g3.abs() == 1).all()
    assert (g1 != g3).any(1).all()                               # G3 != G1
    assert (torch.sign(g2[:, 0]) == torch.sign(g1[:, 0])).all()  # G2 on G1's side
    assert ((g2[:, 0].abs() == 5) | (g2[:, 0].abs() == 7)).all() and (g2[:, 1].abs() == 1).all()
    ids = env.task_id(tasks.float())
    assert ids.unique().numel() == 48 and ids.min() == 0 and ids.max() == 47
    assert len({tuple(t) for t in tasks.tolist()}) == 48
    cells = env.cell_id(torch.tensor([[-7.0, -1.0], [7.0, 1.0], [3.0, 0.0]]))
    assert cells[0] == 0 and cells[1] == 32 and cells[2] >= 0


def test_rooms_batched_matches_single_copies():
    tasks = RoomNavi(1, seed=0).sample_tasks(6)
    batch = RoomNavi(6, seed=0)
    batch.reset(tasks=tasks)
    singles = []
    for i in range(6):
        e = RoomNavi(1, seed=0)
        e.reset(tasks=tasks[i:i + 1])
        singles.append(e)
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        acts = torch.randint(5, (6,), generator=gen)
        obs, r, _, trunc, info = batch.step(acts)
        for i, e in enumerate(singles):
            o, ri, _, _, inf = e.step(acts[i:i + 1])
            assert torch.equal(obs[i], o[0]) and r[i] == ri[0] and info["stage"][i] == inf["stage"][0]
    assert trunc.all()


@pytest.mark.parametrize("env_cls", [TreasureHunt, RoomNavi])
def test_plot_rollout_writes_png(env_cls, tmp_path):
    env = env_cls(1, seed=0)
    obs = [env.reset()[0]]
    pos = [obs[0][:2]]
    acts, rews = [], []
    for t in range(12):
        a = torch.tensor([t % 5]) if env.is_discrete else torch.tensor([[math.cos(t), math.sin(t)]])
        o, r, _, _, info = env.step(a)
        obs.append(o[0]), pos.append(info["pos"][0]), acts.append(a[0]), rews.append(r[0])
    rollout = {"obs": torch.stack(obs).numpy(), "actions": torch.stack(acts).numpy(),
               "rewards": torch.stack(rews).numpy(), "task": env.get_task()[0].numpy(),
               "episode": np.zeros(12), "pos": torch.stack(pos).numpy(), "bonus": np.linspace(0, 1, 12)}
    env.plot_rollout(rollout, tmp_path / "a.png")
    del rollout["bonus"], rollout["pos"]
    env.plot_rollout(rollout, tmp_path / "b.png")
    assert (tmp_path / "a.png").stat().st_size > 1000 and (tmp_path / "b.png").stat().st_size > 1000
