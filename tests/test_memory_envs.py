import itertools

import pytest
import torch

from environments.memory.image_maze import GREEN, RED, ImageMaze
from environments.memory.planning_game import PlanningGame, PlanningGameJustGoal
from environments.memory.tmaze import (
    DOWN,
    LEFT,
    RIGHT,
    UP,
    TMaze,
    TMazeAgree,
    TMazeLatent,
    TMazeLN,
    TMazeLNP1,
    TMazeLS,
)
from environments.navigation.grid_variants import GridNaviDense, GridNaviShowGoal
from environments.registry import ENVS

torch.set_num_threads(1)


def _act(n, a):
    return torch.full((n,), a, dtype=torch.long)


def test_registered_names():
    import environments.memory
    import environments.navigation.grid_variants  # noqa: F401
    for name in ["TMaze", "TMaze-LN", "TMaze-LN-P1", "TMaze-Agree", "TMaze-Latent", "TMaze-LS", "PlanningGame",
                 "PlanningGame-justgoal", "ImageMaze", "GridNavi-dense", "GridNavi-showgoal"]:
        assert name in ENVS


# ---------------------------------------------------------------- T-Maze
def test_tmaze_ln_scripted():
    env = TMazeLN(2, seed=0, maze_length=5, max_episode_steps=10)
    obs = env.reset(tasks=torch.tensor([[1.0], [0.0]]))
    assert obs[:, 0].tolist() == [1, 1] and obs[:, 1].tolist() == [1, -1] and obs[:, 2].tolist() == [0, 0]
    assert set(obs[:, 3].tolist()) <= {-1.0, 1.0}
    for t in range(4):  # forced right: any action moves right
        obs, r, term, _, _ = env.step(torch.tensor([UP, LEFT]))
        assert r.tolist() == [0, 0] and not term.any()
        assert env.pos.tolist() == [t + 1, t + 1]
        assert obs[:, 1].tolist() == [0, 0]  # indicator only at the start
    assert obs[:, 2].tolist() == [1, 1]  # at the junction
    # forced final decision: LEFT -> UP, RIGHT -> DOWN
    obs, r, term, _trunc, info = env.step(torch.tensor([LEFT, LEFT]))
    assert r.tolist() == [4.0, -3.0] and term.all() and info["success"].tolist() == [1, 0]
    _, r, term, _, _ = env.step(torch.tensor([UP, UP]))  # finished copies stay frozen
    assert r.tolist() == [0, 0] and env.pos.tolist() == [4, 4]
    obs = env.reset_mdp()
    assert env.pos.tolist() == [0, 0] and env.get_task().flatten().tolist() == [1, 0]
    obs, r, *_ = env.step(_act(2, RIGHT))


def test_tmaze_p1_indicator_and_timeout():
    env = TMazeLNP1(1, seed=0, maze_length=5, max_episode_steps=3, force_right=False, force_final_decision=False)
    obs = env.reset(tasks=torch.tensor([[0.0]]))
    assert obs[0, :3].tolist() == [1, 0, 0]
    obs, *_ = env.step(_act(1, RIGHT))
    assert obs[0, :3].tolist() == [0, -1, 0]
    obs, r, term, trunc, _ = env.step(_act(1, UP))  # UP in the corridor: nothing
    assert env.pos.item() == 1 and r.item() == 0 and not trunc.any()
    obs, r, term, trunc, _ = env.step(_act(1, LEFT))  # allow_left=False
    assert env.pos.item() == 1 and trunc.all() and not term.any()


@pytest.mark.parametrize("ind1,ind2,up_ok", [(1, 1, True), (0, 0, True), (1, 0, False), (0, 1, False)])
def test_tmaze_agree(ind1, ind2, up_ok):
    env = TMazeAgree(2, seed=0, maze_length=6, agree_pos=3, max_episode_steps=20)
    obs = env.reset(tasks=torch.tensor([[ind1, ind2], [ind1, ind2]], dtype=torch.float))
    seen = [obs[:, 1].clone()]
    for _ in range(5):
        obs, *_ = env.step(_act(2, RIGHT))
        seen.append(obs[:, 1].clone())
    seen = torch.stack(seen)[:, 0].tolist()
    assert seen == [0, 2 * ind1 - 1, 0, 2 * ind2 - 1, 0, 0]
    _, r, term, _, _ = env.step(torch.tensor([UP, DOWN]))
    assert term.all()
    assert r.tolist() == ([4.0, -3.0] if up_ok else [-3.0, 4.0])
    assert env.num_tasks == 4 and env.task_to_id(env.get_task()).tolist() == [ind1 + 2 * ind2] * 2


def test_tmaze_latent_check_statistics():
    n = 4000
    env = TMazeLatent(n, seed=0, maze_length=5, max_episode_steps=10)
    tasks = torch.zeros(n, 1)
    tasks[: n // 2] = 1.0
    obs = env.reset(tasks=tasks)
    assert (obs[:, 1] == 0).all()  # no indicator anywhere
    ups = [obs[:, 3]]
    for _ in range(3):
        obs, *_ = env.step(_act(n, RIGHT))
        assert (obs[:, 1] == 0).all()
        ups.append(obs[:, 3])
    frac_up = (torch.stack(ups) > 0).float().mean(0)
    assert frac_up[: n // 2].mean().item() == pytest.approx(0.7, abs=0.02)
    assert frac_up[n // 2:].mean().item() == pytest.approx(0.5, abs=0.02)


def test_tmaze_ls_intermediate_checks():
    env = TMazeLS(1, seed=3, maze_length=4, max_episode_steps=30)
    obs = env.reset(tasks=torch.tensor([[1.0]]))
    obs, r, *_ = env.step(_act(1, RIGHT))  # RIGHT does not move with checks
    assert env.pos.item() == 0 and r.item() == 0
    while env.pos.item() < 3:
        check = obs[0, 3].item()
        wrong = DOWN if check > 0 else UP
        right = UP if check > 0 else DOWN
        p = env.pos.item()
        obs_w, r, *_ = env.step(_act(1, wrong))
        assert env.pos.item() == p and r.item() == 0
        check = obs_w[0, 3].item()
        right = UP if check > 0 else DOWN
        obs, r, *_ = env.step(_act(1, right))
        assert env.pos.item() == p + 1 and r.item() == pytest.approx(0.1)
    # at the junction: no forced decision, LEFT is a no-op, UP decides
    _, r, term, *_ = env.step(_act(1, LEFT))
    assert not term.any() and r.item() == 0
    _, r, term, *_ = env.step(_act(1, UP))
    assert term.all() and r.item() == 4.0


def test_tmaze_reset_mask_and_seeding():
    e1, e2 = TMaze(8, seed=5), TMaze(8, seed=5)
    assert torch.equal(e1.get_task(), e2.get_task())
    task_before = e1.get_task().clone()
    e1.step(_act(8, RIGHT))
    mask = torch.zeros(8, dtype=torch.bool)
    mask[2] = True
    e1.reset(mask)
    assert e1.pos.tolist() == [1, 1, 0, 1, 1, 1, 1, 1]
    assert torch.equal(e1.get_task()[~mask], task_before[~mask])


# ---------------------------------------------------------------- Planning game
def test_planning_game_scripted():
    env = PlanningGame(2, seed=0)
    labels = torch.stack([torch.arange(9), torch.arange(9).flip(0)]).float()
    env.reset(tasks=labels)
    env.pos = torch.tensor([[0, 0], [1, 1]])
    env.goal = torch.tensor([2, 4])  # env 0: cell (0, 2); env 1: its own cell (1, 1)
    obs = env._obs()
    assert obs.shape == (2, 18) and obs.sum(1).tolist() == [2, 2]
    assert obs[0, 0] == 1 and obs[0, 9 + 2] == 1  # label of (0,0) is 0; goal label 2
    assert obs[1, 8 - 4] == 1 and obs[1, 9 + 8 - 4] == 1
    # toroidal moves: Down from y=0 wraps to y=2; Left from x=0 wraps to x=2
    obs, r, _term, trunc, _info = env.step(torch.tensor([1, 4]))  # env0 Down, env1 Collect on goal
    assert env.pos[0].tolist() == [0, 2] and r.tolist() == [0, 1]
    assert env.goal[1].item() != 4  # new goal, never the current cell
    obs, r, *_ = env.step(torch.tensor([4, 4]))  # env0 collects on (0, 2); env1 collects off goal
    assert r.tolist() == [1, 0]
    env.step(torch.tensor([2, 2]))
    assert env.pos[0].tolist() == [2, 2]
    for t in range(96):
        *_, trunc, _ = env.step(_act(2, 0))
        assert not trunc.any()
    *_, trunc, _ = env.step(_act(2, 0))
    assert trunc.all() and env.max_episode_steps == 100


def test_planning_game_justgoal_and_tasks():
    env = PlanningGameJustGoal(3, seed=1)
    obs = env.reset()
    assert obs.shape == (3, 1) and (obs == 0).all()  # start never on the goal
    tasks = env.get_task()
    assert all(sorted(t.tolist()) == list(range(9)) for t in tasks)
    env.goal = env.cell(env.pos).clone()
    assert (env._obs() == 1).all()


# ---------------------------------------------------------------- ImageMaze
def _maze(side, doors):
    env = ImageMaze(1, seed=0, num_rooms=len(doors), max_episode_steps=50)
    env.reset(tasks=torch.tensor([[float(side)] + [float(d) for d in doors]]))
    return env


@pytest.mark.parametrize("side", [0, 1])
def test_image_maze_scripted(side):
    env = _maze(side, [0, 2, 1])  # door lanes per wall; start lane 1
    obs = env._obs()
    assert obs.shape == (1, 300)
    img = obs.reshape(3, 10, 10)
    colour = torch.tensor([0.0, 1.0, 0.0]) if side == 0 else torch.tensor([1.0, 0.0, 0.0])
    assert ((img.permute(1, 2, 0) == colour).all(-1)).any()  # indicator colour visible at the start
    L, F, R = 0, 1, 2
    _, r, *_ = env.step(_act(1, F))  # wall ahead (door at lane 0)
    assert env.pos[0].tolist() == [0, 2] and r.item() == 0
    plan = [L, F, F, R, R, F, F, L, F, F]
    rewards = []
    for a in plan:
        obs, r, term, _trunc, _ = env.step(_act(1, a))
        rewards.append(round(r.item(), 4))
        assert not term.any()
    assert env.pos[0].tolist() == [6, 2]  # final room, lane 1
    assert rewards == [0, 0, 0.1, 0, 0, 0, 0.1, 0, 0, 0.1]
    cells = env.render_cells()[0]
    assert not ((cells == GREEN) | (cells == RED)).any()  # indicator out of view now
    _, r, term, *_ = env.step(_act(1, L))
    assert env.pos[0].tolist() == [6, 1] and not term.any()
    _, r, term, _, info = env.step(_act(1, L))  # into the left exit
    assert term.all() and r.item() == (4.0 if side == 0 else -3.0)
    assert info["success"].item() == (1.0 if side == 0 else 0.0)
    _, r, *_ = env.step(_act(1, R))
    assert r.item() == 0 and env.pos[0].tolist() == [6, 1]


def test_image_maze_tasks_and_noise():
    env = ImageMaze(16, seed=0, noise=0.05)
    t = env.get_task()
    assert t.shape == (16, 17) and set(t[:, 0].tolist()) <= {0.0, 1.0} and t[:, 1:].max() <= 2
    obs = env.reset_mdp()
    assert obs.shape == (16, 300) and obs.min() >= 0 and obs.max() <= 1
    assert env.action_space.n == 3 and env.max_episode_steps == 200


# ---------------------------------------------------------------- Grid variants
def test_grid_dense_reward_increases_towards_goal():
    env = GridNaviDense(1, seed=0)
    env.reset(tasks=torch.tensor([[3.0, 3.0]]))
    rs = []
    for a in [2, 2, 2, 1, 1, 1]:  # right x3, up x3
        _, r, *_ = env.step(_act(1, a))
        rs.append(r.item())
    assert all(b > a for a, b in itertools.pairwise(rs))
    assert rs[-1] == 1.0 and rs[0] < -0.1


def test_grid_showgoal_only_first_step():
    env = GridNaviShowGoal(2, seed=0)
    obs = env.reset(tasks=torch.tensor([[3.0, 4.0], [2.0, 2.0]]))
    assert obs.shape == (2, 4) and obs[:, 2:].tolist() == [[3, 4], [2, 2]]
    obs, *_ = env.step(_act(2, 1))
    assert obs[:, 2:].tolist() == [[-1, -1], [-1, -1]]
    obs = env.reset_mdp()
    assert obs[:, 2:].tolist() == [[3, 4], [2, 2]]
