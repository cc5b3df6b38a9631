"""The rollout / bonus / PPO speed paths compute exactly what the plain code computes.

Each fast path is compared bit for bit with a plain reference (the code it replaced, kept
here): the hand-fused GRU belief step (values and gradients), flat latents, the batched
per-step return normaliser, GAE in numpy, the rooms/treasure step tables, the storage's
per-step views, and the PPO update (parameters and statistics after an update).
"""
from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch

import agent as agent_mod
from agent import Agent, BeliefUpdater, _FusedGRUStep
from algorithms.ppo import PolicyUpdater
from algorithms.storage import RolloutStorage, _gae_numpy, _returns, compute_gae
from environments.navigation.rooms import _REWARDS, RoomNavi
from environments.navigation.treasure_hunt import TreasureHunt
from models.encoder import RNNEncoder
from models.policy import Policy
from utils.running_stats import ReturnNormaliser, RunningMeanStd


# ---------------------------------------------------------------- fused belief step
def _encoder(seed=0, action_embed=16, state_embed=8, reward_embed=4, before=(), after=()):
    torch.manual_seed(seed)
    enc = RNNEncoder(3, 2, 5, hidden_size=24, action_embed=action_embed, state_embed=state_embed,
                     reward_embed=reward_embed, layers_before=list(before), layers_after=list(after))
    with torch.no_grad():  # non-zero biases: the reset to the prior must pick the prior's head output
        for p in enc.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return enc


def _plain_step(enc, prior, h0, hidden, a, s, r, done):
    post = enc.step(a, s, r[:, None], hidden)
    new = done[:, None]
    return (torch.where(new, prior.mean, post.mean), torch.where(new, prior.logvar, post.logvar),
            torch.where(new, h0, post.hidden)), post


@pytest.mark.parametrize("embeds", [(16, 8, 4), (0, 8, 4), (4, 0, 2)])
def test_fused_belief_step_is_bit_identical(embeds):
    enc = _encoder(1, *embeds)
    N = 7
    upd = BeliefUpdater(enc, N, "cpu")
    assert upd.fused is not None
    gen = torch.Generator().manual_seed(3)
    hidden = hidden_ref = enc.initial_hidden(N)
    with torch.inference_mode():
        for t in range(12):
            a, s, r = (torch.randn(N, 2, generator=gen), torch.randn(N, 3, generator=gen), torch.randn(N, generator=gen))
            done = torch.rand(N, generator=gen) < 0.3
            prev = hidden_ref
            flat, hidden, post, post_h = upd.step_flat(hidden, a, s, r, None, done)
            (m, lv, hidden_ref), p = _plain_step(enc, upd.prior, upd.h0, hidden_ref, a, s, r, done)
            assert torch.equal(flat, torch.cat([m, lv], -1))
            assert torch.equal(hidden, hidden_ref)
            assert torch.equal(post, torch.cat([p.mean, p.logvar], -1)) and torch.equal(post_h, p.hidden)
            # the Posterior interface gives the same numbers
            b2, p2 = upd(agent_mod.Posterior(None, None, prev), a, s, r, None, done)
            assert torch.equal(b2.mean, m) and torch.equal(b2.logvar, lv) and torch.equal(b2.hidden, hidden_ref)
            assert torch.equal(p2.mean, p.mean) and torch.equal(p2.logvar, p.logvar)


def test_fused_belief_step_gradients_match():
    enc = _encoder(2)
    enc2 = copy.deepcopy(enc)
    N = 5
    gen = torch.Generator().manual_seed(0)
    a, s, r = torch.randn(N, 2, generator=gen), torch.randn(N, 3, generator=gen), torch.randn(N, generator=gen)
    done = torch.tensor([False, True, False, False, True])
    flat, hidden, post, _ = BeliefUpdater(enc, N, "cpu").step_flat(torch.randn(N, 24, generator=gen), a, s, r, None, done)
    gen = torch.Generator().manual_seed(0)
    a2, s2, r2 = torch.randn(N, 2, generator=gen), torch.randn(N, 3, generator=gen), torch.randn(N, generator=gen)
    upd2 = BeliefUpdater(enc2, N, "cpu")
    (m, lv, h), p = _plain_step(enc2, upd2.prior, upd2.h0, torch.randn(N, 24, generator=gen), a2, s2, r2, done)
    ((flat * 1.3).sum() + post.pow(2).sum() + hidden.sum()).backward()
    ((torch.cat([m, lv], -1) * 1.3).sum() + torch.cat([p.mean, p.logvar], -1).pow(2).sum() + h.sum()).backward()
    for (name, p1), (_, p2) in zip(enc.named_parameters(), enc2.named_parameters()):
        assert (p1.grad is None) == (p2.grad is None), name
        if p1.grad is not None:
            assert torch.equal(p1.grad, p2.grad), name


def test_fused_step_only_for_the_plain_gru_layout():
    assert _FusedGRUStep.of(_encoder(0, before=(8,))) is None
    assert _FusedGRUStep.of(_encoder(0, after=(8,))) is None
    enc = _encoder(0, after=(8,))  # falls back to encoder.step with the same results
    upd = BeliefUpdater(enc, 4, "cpu")
    a, s, r, done = torch.randn(4, 2), torch.randn(4, 3), torch.randn(4), torch.tensor([True, False, False, True])
    with torch.inference_mode():
        flat, hidden, post, _ = upd.step_flat(enc.initial_hidden(4), a, s, r, None, done)
        (m, lv, h), p = _plain_step(enc, upd.prior, upd.h0, enc.initial_hidden(4), a, s, r, done)
    assert torch.equal(flat, torch.cat([m, lv], -1)) and torch.equal(hidden, h)


@pytest.mark.parametrize("sample,relu", [(False, False), (False, True), (True, False), (True, True)])
def test_latent_flat_matches_latent(sample, relu):
    ag = Agent(SimpleNamespace(sample_embeddings=sample, add_nonlinearity_to_latent=relu), None, None, None)
    m, lv = torch.randn(6, 4), torch.randn(6, 4)
    torch.manual_seed(5)
    want = ag.latent(agent_mod.Posterior(m, lv, None))
    torch.manual_seed(5)
    got = ag.latent_flat(torch.cat([m, lv], -1))
    assert torch.equal(got, want)


# ---------------------------------------------------------------- trainer-level rollout
def _learner(env_type, tmp_path, **extra):
    from config.loader import resolve
    from metalearner import MetaLearner

    values = {"num_frames": 10**6, "num_processes": 4, "policy_num_steps": 24, "precollect_len": 0,
              "progress_bar": False, "encoder_gru_hidden_size": 16, "latent_dim": 3, "policy_layers": [16],
              "vae_batch_num_trajs": 2, "size_vae_buffer": 50, "seed": 3, "vae_update_overlap": False, **extra}
    if env_type == "treasure_hunt_hyperx":
        values["env_kwargs"] = {"max_episode_steps": 10}
    return MetaLearner(resolve(env_type, values=values), str(tmp_path))


@pytest.mark.parametrize("env_type", ["treasure_hunt_hyperx", "room_hyperx"])
def test_rollout_with_fused_step_equals_plain_step(env_type, tmp_path, monkeypatch):
    """Two rollouts + updates of the real trainer, fused GRU step vs the encoder's own step."""
    results = []
    for fused in (True, False):
        if not fused:
            monkeypatch.setattr(_FusedGRUStep, "of", classmethod(lambda cls, enc: None))
        torch.manual_seed(0)
        learner = _learner(env_type, tmp_path / str(fused))
        for _ in range(2):
            learner.collect_rollout()
            stats = learner.update()
        s = learner.storage
        results.append(({k: v.clone() for k, v in s.inputs.items()}, s.hidden.clone(), s.rewards.clone(),
                        {k: v.clone() for k, v in s.extras.items()}, stats["policy"],
                        [p.detach().clone() for p in learner.policy.parameters()]))
    (i1, h1, r1, e1, st1, p1), (i2, h2, r2, e2, st2, p2) = results
    assert all(torch.equal(i1[k], i2[k]) for k in i1) and torch.equal(h1, h2) and torch.equal(r1, r2)
    assert all(torch.equal(e1[k], e2[k]) for k in e1) and st1 == st2
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))


# ---------------------------------------------------------------- return normaliser and GAE
class _PlainReturnNormaliser(ReturnNormaliser):
    """The per-step loop the batched update replaced."""

    @torch.no_grad()
    def update(self, rewards, dones):
        keep = 1.0 - dones.float()
        rets = torch.empty_like(rewards) if self.stats == "per_rollout" else None
        ret = self.ret
        for t in range(rewards.shape[0]):
            ret = ret * self.gamma + rewards[t]
            if rets is None:
                self.rms.update(ret)
            else:
                rets[t] = ret
            ret = ret * keep[t]
        self.ret.copy_(ret)
        if rets is not None:
            self.rms.update(rets)


@pytest.mark.parametrize("stats", ["per_step", "per_rollout"])
@pytest.mark.parametrize("N,gamma,clip", [(16, 0.97, None), (7, 0.98, 10.0), (1, 0.99, 1.0)])
def test_return_normaliser_is_bit_identical(stats, N, gamma, clip):
    fast, plain = ReturnNormaliser(N, gamma, clip, stats=stats), _PlainReturnNormaliser(N, gamma, clip, stats=stats)
    gen = torch.Generator().manual_seed(N)
    for it in range(12):
        r = torch.randn(37, N, generator=gen) * (it + 1) + 3 * torch.rand(1, generator=gen)
        d = torch.rand(37, N, generator=gen) < 0.05
        assert torch.equal(fast(r, d), plain(r, d))
        for k in ("mean", "var", "count", "inv_std"):
            assert torch.equal(getattr(fast.rms, k), getattr(plain.rms, k)), k
        assert torch.equal(fast.ret, plain.ret)


def test_running_mean_std_update_steps_is_bit_identical():
    a, b = RunningMeanStd(()), RunningMeanStd(())
    x = torch.randn(50, 13) * 7 + 2
    a.update_steps(x)
    for t in range(50):
        b.update(x[t])
    assert all(torch.equal(getattr(a, k), getattr(b, k)) for k in ("mean", "var", "count", "inv_std"))


def _plain_gae(rewards, values, dones, truncs, gamma, lam, use_gae, proper_time_limits):
    T = rewards.shape[0]
    returns = torch.empty_like(rewards)
    not_done = (~dones).float()
    if use_gae:
        gae = torch.zeros_like(rewards[0])
        for t in reversed(range(T)):
            delta = rewards[t] + gamma * values[t + 1] * not_done[t] - values[t]
            gae = delta + gamma * lam * not_done[t] * gae
            if proper_time_limits:
                gae = gae * (~truncs[t]).float()
            returns[t] = gae + values[t]
    else:
        ret = values[T]
        for t in reversed(range(T)):
            ret = rewards[t] + gamma * ret * not_done[t]
            if proper_time_limits:
                ret = torch.where(truncs[t], values[t], ret)
            returns[t] = ret
    return returns


@pytest.mark.parametrize("use_gae", [True, False])
@pytest.mark.parametrize("ptl", [True, False])
def test_gae_numpy_is_bit_identical(use_gae, ptl):
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        r, v = torch.randn(60, 8, generator=gen) * 4, torch.randn(61, 8, generator=gen)
        d = torch.rand(60, 8, generator=gen) < 0.1
        tr = d & (torch.rand(60, 8, generator=gen) < 0.5)
        want = _plain_gae(r, v, d, tr, 0.97, 0.9, use_gae, ptl)
        assert torch.equal(compute_gae(r, v, d, tr, 0.97, 0.9, use_gae, ptl), want)
        assert torch.equal(torch.from_numpy(_gae_numpy(r, v, d, tr, 0.97, 0.9, use_gae, ptl)), want)
        # the tensor path (GPU) of the same recursion, here on CPU tensors
        torch_path = _returns(r, v, (~d).float(), tr, (~tr).float(), 0.97, 0.97 * 0.9, use_gae, ptl, torch)
        assert torch.equal(torch_path, want)


# ---------------------------------------------------------------- environments
def _plain_room_move(env, pos, actions):
    new = pos + env.moves[actions]
    return torch.where(env._valid(new)[:, None], new, pos)


def _plain_room_reward(env, pos, goals, reached):
    on = (pos[:, None, :] == goals).all(-1)
    hit1 = on[:, 0]
    hit2 = ~hit1 & reached[:, 0] & on[:, 1]
    hit3 = ~hit1 & ~hit2 & reached[:, 1] & on[:, 2]
    hits = torch.stack([hit1, hit2, hit3], 1)
    paid = hits if env.repeat_goal_rewards else hits & ~reached
    reward = torch.full((env.num_envs,), env.step_penalty)
    for k in (2, 1, 0):
        reward = torch.where(paid[:, k], torch.full_like(reward, _REWARDS[k]), reward)
    return reward, reached | hits


@pytest.mark.parametrize("kwargs", [{}, {"repeat_goal_rewards": False}, {"num_cells": 5, "corridor_len": 2}])
def test_room_step_tables_match_the_plain_rules(kwargs):
    env = RoomNavi(512, seed=0, **kwargs)
    cells = env.cell_table.nonzero() - torch.tensor([env.half_width, env.offset])   # every free cell
    for a in range(5):  # every (cell, action) move
        env.pos = cells.clone()
        env.num_envs = len(cells)
        want = _plain_room_move(env, cells, torch.full((len(cells),), a))
        got = env._next_pos[(cells * env._cell_stride).sum(1) + (env._cell_offset + a)]
        assert torch.equal(got, want)
    env = RoomNavi(512, seed=1, **kwargs)
    gen = torch.Generator().manual_seed(0)
    goal_cells = env.goals.reshape(-1, 2)
    seen = set()
    for _ in range(20):  # positions on goals (and elsewhere), any reached flags
        pick = torch.randint(len(goal_cells), (512,), generator=gen)
        anywhere = cells[torch.randint(len(cells), (512,), generator=gen)]
        env.pos = torch.where((torch.rand(512, generator=gen) < 0.7)[:, None], goal_cells[pick], anywhere)
        env.reached = torch.rand(512, 3, generator=gen) < 0.5
        want_r, want_reached = _plain_room_reward(env, env.pos, env.goals, env.reached)
        got_r = env._reward()
        assert torch.equal(got_r, want_r) and torch.equal(env.reached, want_reached)
        seen |= set(want_r.tolist())
    assert len(seen) == 4  # penalty and all three goal rewards were exercised


def test_treasure_step_matches_the_plain_rules():
    env = TreasureHunt(256, seed=0)
    gen = torch.Generator().manual_seed(0)
    kinds = set()
    for _ in range(30):
        near = torch.rand(256, 1, generator=gen)
        goal_side = env.goal + 0.08 * torch.randn(256, 2, generator=gen)
        top = 0.12 * torch.randn(256, 2, generator=gen)
        env.pos = torch.where(near < 0.3, goal_side, torch.where(near < 0.6, top, 1.4 * torch.randn(256, 2, generator=gen)))
        pos0 = env.pos.clone()
        act = 0.3 * torch.randn(256, 2, generator=gen)
        obs, reward, _, _, info = env.step(act)
        pos = (pos0 + 0.1 * act.clamp(-1, 1)).clamp(-1.5, 1.5)
        d_top, d_goal = torch.linalg.vector_norm(pos, dim=1), torch.linalg.vector_norm(pos - env.goal, dim=1)
        on_m = d_top <= 0.5
        at_t = (d_goal <= 0.1) & ~on_m
        want = torch.where(on_m, 1.0 * (d_top - 0.5) + -5.0,
                           torch.where(at_t, torch.full_like(d_top, 10.0), -5.0 * d_top.clamp_min(1.0)))
        shown = torch.where((d_top < 0.1)[:, None], env.goal, torch.zeros_like(env.goal))
        assert torch.equal(reward, want) and torch.equal(obs, torch.cat([pos, shown], 1))
        assert torch.equal(info["success"], at_t.float())
        kinds |= {bool(on_m.any()), bool(at_t.any()), bool((d_top < 0.1).any())}
    assert kinds == {True}


# ---------------------------------------------------------------- storage and PPO
def test_storage_insert_writes_every_field():
    T, N = 5, 3
    st = RolloutStorage(T, N, {"state": 2, "latent": 4}, (), True, 6, "cpu", extra_dims={"posterior": 4})
    gen = torch.Generator().manual_seed(0)
    steps = []
    for t in range(T):
        x = dict(inputs={"state": torch.randn(N, 2, generator=gen), "latent": torch.randn(N, 4, generator=gen)},
                 hidden=torch.randn(N, 6, generator=gen), next_obs=torch.randn(N, 2, generator=gen),
                 action=torch.randint(5, (N,), generator=gen), reward_raw=torch.randn(N, generator=gen),
                 reward=torch.randn(N, generator=gen), done=torch.rand(N, generator=gen) < 0.5,
                 trunc=torch.rand(N, generator=gen) < 0.5, extras={"posterior": torch.randn(N, 4, generator=gen)})
        st.insert(**x)
        steps.append(x)
    for t, x in enumerate(steps):
        assert all(torch.equal(st.inputs[k][t + 1], v) for k, v in x["inputs"].items())
        assert torch.equal(st.hidden[t + 1], x["hidden"]) and torch.equal(st.next_obs[t], x["next_obs"])
        assert torch.equal(st.actions[t], x["action"]) and torch.equal(st.rewards_raw[t], x["reward_raw"])
        assert torch.equal(st.rewards[t], x["reward"]) and torch.equal(st.dones[t], x["done"])
        assert torch.equal(st.truncs[t], x["trunc"]) and torch.equal(st.extras["posterior"][t], x["extras"]["posterior"])


def _plain_ppo_update(up, storage):
    """The PPO loop before the speed changes (per-field indexing, per-stat sums)."""
    T, N = storage.num_steps, storage.num_envs
    flat = lambda x: x.reshape(T * N, *x.shape[2:])  # noqa: E731
    inputs = {k: flat(v[:-1]) for k, v in storage.inputs.items()}
    actions, old_logp = flat(storage.actions), flat(storage.log_probs)
    old_values, returns = flat(storage.values[:-1]), flat(storage.returns)
    adv = returns - old_values
    adv = (adv - adv.mean()) / (adv.std() + 1e-5)
    stats = {"value_loss": 0.0, "action_loss": 0.0, "dist_entropy": 0.0, "approx_kl": 0.0, "clipfrac": 0.0}
    n = 0
    for _ in range(up.epochs):
        perm = torch.randperm(T * N)
        for idx in perm.chunk(up.minibatches):
            mb = {k: v[idx] for k, v in inputs.items()}
            value, logp, entropy = up.policy.evaluate(mb, actions[idx])
            ratio = torch.exp(logp - old_logp[idx])
            if up.algo == "ppo":
                action_loss = -torch.min(ratio * adv[idx], ratio.clamp(1 - up.clip, 1 + up.clip) * adv[idx]).mean()
            else:
                action_loss = -(logp * adv[idx]).mean()
            value_loss = up._value_loss(value, old_values[idx], returns[idx])
            loss = up.value_coef * value_loss + action_loss - up.entropy_coef * entropy.mean()
            up.optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(up.policy.parameters(), up.max_grad_norm)
            up.optimiser.step()
            with torch.no_grad():
                stats["value_loss"] += value_loss.detach()
                stats["action_loss"] += action_loss.detach()
                stats["dist_entropy"] += entropy.mean().detach()
                stats["approx_kl"] += (old_logp[idx] - logp).mean().detach()
                stats["clipfrac"] += ((ratio - 1).abs() > up.clip).float().mean()
            n += 1
    out = {k: float(v) / n for k, v in stats.items()}
    out["sum"] = up.value_coef * out["value_loss"] + out["action_loss"] - up.entropy_coef * out["dist_entropy"]
    return out


@pytest.mark.parametrize("discrete,algo", [(True, "ppo"), (False, "ppo"), (True, "a2c")])
def test_ppo_update_is_bit_identical(discrete, algo):
    T, N = 12, 4
    torch.manual_seed(0)
    policy = Policy({"state": 3, "latent": 4}, 5 if discrete else 2, discrete, [16],
                    normalise={"state": True}, embed_dims={"latent": 8})
    st = RolloutStorage(T, N, {"state": 3, "latent": 4}, () if discrete else (2,), discrete, 1, "cpu")
    gen = torch.Generator().manual_seed(1)
    for v in st.inputs.values():
        v.normal_(generator=gen)
    if discrete:
        st.actions.random_(5, generator=gen)
    else:
        st.actions.normal_(generator=gen)
    st.evaluate_policy(policy)
    st.returns = st.values[:-1] + torch.randn(T, N, generator=gen)
    policy2 = copy.deepcopy(policy)
    up = PolicyUpdater(policy, algo, lr=1e-2, epochs=3, minibatches=4, clip=0.1)
    up2 = PolicyUpdater(policy2, algo, lr=1e-2, epochs=3, minibatches=4, clip=0.1)
    torch.manual_seed(7)
    got = up.update(st)
    torch.manual_seed(7)
    want = _plain_ppo_update(up2, st)
    assert got == want
    for p1, p2 in zip(policy.parameters(), policy2.parameters()):
        assert torch.equal(p1, p2)
    assert math.isfinite(got["sum"])
