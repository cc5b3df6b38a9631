"""GridNavi and point robots: dynamics, rewards and the exact Bayes belief."""
import torch

from environments import make_env

NOOP, UP, RIGHT, DOWN, LEFT = range(5)


def _grid(goal, n=1):
    env = make_env("GridNavi", n, seed=0)
    env.reset(tasks=torch.tensor([goal] * n, dtype=torch.float32))
    return env


def test_grid_moves_walls_and_rewards():
    env = _grid([2, 1])
    seq = [(LEFT, [0, 0], -0.1), (UP, [0, 1], -0.1), (RIGHT, [1, 1], -0.1), (RIGHT, [2, 1], 1.0),
           (NOOP, [2, 1], 1.0), (DOWN, [2, 0], -0.1), (DOWN, [2, 0], -0.1)]
    for a, pos, rew in seq:
        obs, r, term, trunc, _ = env.step(torch.tensor([a]))
        assert obs.tolist() == [pos] and abs(float(r) - rew) < 1e-6
        assert not term.any()


def test_grid_time_limit_is_15():
    env = _grid([4, 4])
    for t in range(15):
        *_, trunc, _ = env.step(torch.tensor([NOOP]))
    assert bool(trunc.all())


def test_goal_distribution_excludes_start_area():
    env = make_env("GridNavi", 1, seed=3)
    tasks = env.sample_tasks(5000)
    assert not ((tasks[:, 0] <= 1) & (tasks[:, 1] <= 1)).any()
    ids = set(map(tuple, tasks.long().tolist()))
    assert len(ids) == 21


def test_exact_belief_uniform_then_eliminates_visited_then_onehot():
    env = _grid([0, 3])
    b = env.get_belief()[0]
    assert torch.allclose(b.sum(), torch.tensor(1.0))
    assert torch.allclose(b[env.allowed], torch.full((21,), 1 / 21))
    env.step(torch.tensor([UP]))      # (0,1): not an allowed goal -> belief unchanged
    env.step(torch.tensor([UP]))      # (0,2): allowed, not the goal -> eliminated
    b = env.get_belief()[0]
    assert float(b[env.cell_id(torch.tensor([0, 2]))]) == 0.0
    assert torch.allclose(b[b > 0], torch.full((20,), 1 / 20))
    env.step(torch.tensor([UP]))      # goal found
    b = env.get_belief()[0]
    assert float(b[env.cell_id(torch.tensor([0, 3]))]) == 1.0 and float(b.sum()) == 1.0


def test_belief_carries_over_episodes_but_not_tasks():
    env = _grid([4, 4])
    env.step(torch.tensor([UP]))
    env.step(torch.tensor([UP]))                 # visit (0,2)
    env.reset_mdp()
    assert float(env.get_belief()[0, env.cell_id(torch.tensor([0, 2]))]) == 0.0
    env.reset(tasks=torch.tensor([[4.0, 4.0]]))
    assert float(env.get_belief()[0, env.cell_id(torch.tensor([0, 2]))]) > 0.0


def test_same_seed_same_tasks_different_seed_different():
    a = make_env("GridNavi", 8, seed=5).get_task()
    b = make_env("GridNavi", 8, seed=5).get_task()
    c = make_env("GridNavi", 8, seed=6).get_task()
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_point_robot_dense_and_sparse_rewards():
    env = make_env("SparsePointEnv", 2, seed=0)
    env.reset(tasks=torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    for _ in range(9):                     # move right 0.9 along x
        obs, r, *_, info = env.step(torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    assert torch.allclose(obs[0], torch.tensor([0.9, 0.0]), atol=1e-5)
    # copy 0 is 0.1 from its goal: inside radius 0.2 -> 1 - 0.1
    assert abs(float(r[0]) - 0.9) < 1e-5 and float(info["success"][0]) == 1.0
    assert float(r[1]) == 0.0 and float(info["dense_reward"][1]) < -1.0
    # actions are clipped to [-1, 1]
    obs, *_ = env.step(torch.tensor([[5.0, 0.0], [0.0, 0.0]]))
    assert abs(float(obs[0, 0]) - 1.0) < 1e-5


def test_point_robot_goals_on_semicircle():
    g = make_env("PointEnv", 1, seed=0).sample_tasks(1000)
    assert torch.allclose(g.norm(dim=1), torch.ones(1000), atol=1e-5) and bool((g[:, 1] >= 0).all())
