"""environments/members.py: the seeds' envs of a --num_seeds run stepped as one group of S x N
copies give every seed bit for bit what its own env gives."""
from __future__ import annotations

import pytest
import torch

from config.loader import resolve
from environments.bamdp import build_env
from environments.members import EnvGroup, why_not_grouped

GROUPED = ["gridworld_varibad", "gridworld_dense_varibad", "gridworld_showgoal_varibad", "pointrobot_varibad",
           "treasure_hunt_hyperx", "room_hyperx"]


def _envs(env_type: str, S: int, N: int):
    cfgs = [resolve(env_type, values={"seed": 10 + k, "num_processes": N}) for k in range(S)]
    envs = [build_env(c, N, c.seed, "cpu") for c in cfgs]
    for e in envs:
        e.record_task = True
    return cfgs, envs


def _state(env) -> list:
    st = env.state_dict()
    return [st["episode"], st["bamdp_step"], *st["env"]["tensors"].values(), st["env"]["generator"]]


def _actions(env, S: int, N: int, gen: torch.Generator) -> torch.Tensor:
    if env.is_discrete:
        return torch.randint(env.action_space.n, (S, N), generator=gen)
    return torch.rand(S, N, env.action_space.shape[0], generator=gen) * 2 - 1


@pytest.mark.parametrize("N", [16, 5])
@pytest.mark.parametrize("env_type", GROUPED)
def test_a_group_steps_every_seed_as_its_own_env(env_type, N):
    """Over two whole BAMDPs and more (task resets, episode resets inside, each seed's new tasks
    from its own generator), twice around begin/end: every seed's obs, reward, done, info and
    any_done from the group equal its own env's, and afterwards its env state and generator."""
    S = 3
    cfgs, alone = _envs(env_type, S, N)
    _, grouped = _envs(env_type, S, N)
    for e in alone + grouped:
        e.reset()
    group = EnvGroup(grouped, cfgs[0], "cpu")
    gen = torch.Generator().manual_seed(0)
    steps, ended = alone[0].horizon + 7, 0
    for rollout in range(2):
        group.begin()
        for _ in range(steps):
            actions = _actions(alone[0], S, N, gen)
            got = group.step(actions)
            for k, env in enumerate(alone):
                obs, reward, done, info = env.step(actions[k])
                g_obs, g_reward, g_done, g_info, g_any = got[k]
                assert torch.equal(obs, g_obs) and torch.equal(reward, g_reward) and torch.equal(done, g_done)
                assert g_any == env.any_done
                ended += g_any
                assert info.keys() == g_info.keys()
                for name, value in info.items():
                    assert (value is None and g_info[name] is None) or torch.equal(value, g_info[name]), name
        group.end()
        for a, g in zip(alone, grouped):
            assert all(torch.equal(x, y) for x, y in zip(_state(a), _state(g)))
    assert ended >= 2 * S  # every seed's BAMDPs ended and restarted with new tasks, in both rollouts


def test_envs_that_do_not_declare_their_state_step_one_by_one():
    cfgs = [resolve("cheetah_dir_varibad", values={"seed": k, "num_processes": 2}) for k in range(2)]
    envs = [build_env(c, 2, c.seed, "cpu") for c in cfgs]
    assert "member_state" in why_not_grouped(envs)
    with pytest.raises(ValueError, match="cannot step these envs as one group"):
        EnvGroup(envs, cfgs[0], "cpu")


def test_state_left_out_of_member_state_is_caught():
    """A tensor the env changes but does not declare (here: a constant table edited by hand in
    one seed's env) stops the group with a message, instead of giving seeds wrong numbers."""
    cfgs, envs = _envs("gridworld_varibad", 2, 4)
    group = EnvGroup(envs, cfgs[0], "cpu")
    envs[1].env.transition = envs[1].env.transition.flip(1)
    with pytest.raises(RuntimeError, match="member_state"):
        group.begin()
