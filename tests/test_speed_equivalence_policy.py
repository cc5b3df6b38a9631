"""The policy / BAMDP speed paths compute exactly what the plain code computes, bit for bit.

- ``Policy.acting()`` (the per-step act function of one rollout) against ``Policy.act``:
  actions, env actions and RNG state for every input layout it mirrors, and the fallback.
- ``BAMDPWrapper``'s single-episode step (R = 1) against the general step it replaced (kept
  here), on several envs, over many steps with episode ends: every returned tensor, every info
  entry and the wrapper/env state.
- A whole training rollout with the fast act function against one acting through ``act``.
"""
from __future__ import annotations

import copy
import tempfile

import pytest
import torch

from environments.bamdp import BAMDPWrapper
from environments.registry import make_env
from models.policy import Policy


# ---------------------------------------------------------------- Policy.acting
def _policy(discrete, embed, normalise, layers=(32, 16), tanh_mean=False, tanh_squash=False, parts=("state", "latent")):
    torch.manual_seed(0)
    dims = {"state": 5, "latent": 6, "belief": 3, "task": 2}
    dims = {p: dims[p] for p in parts}
    pol = Policy(dims, 4 if discrete else 3, discrete, list(layers),
                 embed_dims={p: (7 if embed else None) for p in parts},
                 normalise={p: normalise for p in parts}, tanh_mean=tanh_mean, tanh_squash=tanh_squash)
    with torch.no_grad():
        for p in pol.parameters():
            p.add_(0.2 * torch.randn_like(p))
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):  # non-trivial normaliser statistics
        pol.update_normalisers({p: 3 * torch.randn(40, d, generator=gen) + 1 for p, d in dims.items()})
    return pol, dims


def _inputs(dims, n=9, seed=2):
    gen = torch.Generator().manual_seed(seed)
    return {p: 2 * torch.randn(n, d, generator=gen) for p, d in dims.items()}


@pytest.mark.parametrize("discrete", [True, False])
@pytest.mark.parametrize("embed", [True, False])
@pytest.mark.parametrize("normalise", [True, False])
@pytest.mark.parametrize("deterministic", [False, True])
def test_acting_is_bit_identical(discrete, embed, normalise, deterministic):
    pol, dims = _policy(discrete, embed, normalise)
    fast = pol.acting()
    assert fast != pol.act  # the fused path, not the fallback
    for step in range(5):
        inputs = _inputs(dims, seed=step)
        torch.manual_seed(10 + step)
        with torch.inference_mode():
            ref = pol.act(inputs, deterministic=deterministic)
        rng = torch.get_rng_state()
        torch.manual_seed(10 + step)
        with torch.inference_mode():
            out = fast(inputs, deterministic=deterministic)
        assert torch.equal(torch.get_rng_state(), rng)  # the same random draws
        assert out.action.dtype == ref.action.dtype
        assert torch.equal(out.action, ref.action) and torch.equal(out.env_action, ref.env_action)


@pytest.mark.parametrize("tanh_mean,tanh_squash", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("parts", [("state",), ("state", "latent", "belief", "task"), ("latent",)])
def test_acting_is_bit_identical_squashed_and_part_layouts(tanh_mean, tanh_squash, parts):
    pol, dims = _policy(False, False, True, layers=(8,), tanh_mean=tanh_mean, tanh_squash=tanh_squash, parts=parts)
    with torch.no_grad():
        pol.logstd.copy_(torch.tensor([-20.0, 0.3, -1.0]))  # one entry below the clamp
    fast = pol.acting()
    inputs = _inputs(dims)
    torch.manual_seed(5)
    ref = pol.act(inputs)
    torch.manual_seed(5)
    out = fast(inputs)
    assert torch.equal(out.action, ref.action) and torch.equal(out.env_action, ref.env_action)


def test_acting_mixed_normalisers_and_embedders():
    torch.manual_seed(0)
    pol = Policy({"state": 4, "latent": 6}, 5, True, [16], embed_dims={"state": 8},
                 normalise={"latent": True})
    pol.update_normalisers({"latent": torch.randn(30, 6) * 4})
    inputs = _inputs({"state": 4, "latent": 6})
    torch.manual_seed(3)
    ref = pol.act(inputs)
    torch.manual_seed(3)
    assert torch.equal(pol.acting()(inputs).action, ref.action)


def test_acting_falls_back_where_not_mirrored():
    pol, _ = _policy(True, False, True, parts=("state", "latent", "task"))
    pol.use_task = True  # task-inference warm-up: not mirrored
    assert pol.acting() == pol.act
    from models.hypernet import HyperActorCritic

    hyper = Policy({"state": 3, "latent": 4}, 2, True, [8], cond_part="latent",
                   body_fn=lambda b, c: HyperActorCritic(b, c, [8], 2))
    assert hyper.acting() == hyper.act


# ---------------------------------------------------------------- BAMDP single-episode step
class _PlainBAMDP(BAMDPWrapper):
    """The general step the R = 1 path replaced, verbatim."""

    def step(self, actions):
        task = self.env.get_task() if self.record_task else None
        obs, reward, terminated, truncated, info = self.env.step(actions)
        done_mdp = terminated | truncated
        last_episode = self.episode >= self.episodes_per_task - 1
        done_bamdp = done_mdp & last_episode
        info = dict(info)
        if self.record_belief:
            info["next_belief"] = self.env.get_belief()
        info.update(next_obs=self._flag(obs, done_mdp), done_mdp=done_mdp, episode=self.episode.clone(),
                    bamdp_truncated=done_bamdp & truncated & ~terminated, task=task)
        self.bamdp_step += 1
        new_episode = done_mdp & ~last_episode
        if bool(done_mdp.any()):
            if bool(new_episode.any()):
                self.episode[new_episode] += 1
                obs = torch.where(new_episode[:, None], self.env.reset_mdp(new_episode), obs)
            if bool(done_bamdp.any()):
                self.episode[done_bamdp] = 0
                self.bamdp_step[done_bamdp] = 0
                obs = torch.where(done_bamdp[:, None], self.env.reset(done_bamdp), obs)
        return self._flag(obs), reward, done_bamdp, info


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("name,kwargs", [("TreasureHunt", {"max_episode_steps": 7}), ("RoomNavi", {}),
                                         ("GridNavi", {}), ("PointEnv", {})])
@pytest.mark.parametrize("record_belief", [False, True])
def test_single_episode_bamdp_step_is_identical(name, kwargs, record_belief):
    N = 6
    fast = BAMDPWrapper(make_env(name, num_envs=N, seed=4, **kwargs), 1)
    plain = _PlainBAMDP(make_env(name, num_envs=N, seed=4, **kwargs), 1)
    record_belief = record_belief and fast.belief_dim > 0
    fast.record_belief = plain.record_belief = record_belief
    assert _same(fast.reset(), plain.reset())
    gen = torch.Generator().manual_seed(0)
    kept = []  # info tensors kept across steps must keep their values (as evaluation keeps them)
    for t in range(3 * fast.max_episode_steps + 5):
        if fast.is_discrete:
            a = torch.randint(fast.action_space.n, (N,), generator=gen)
        else:
            a = torch.rand(N, fast.action_space.shape[0], generator=gen) * 2 - 1
        out_f, out_p = fast.step(a.clone()), plain.step(a.clone())
        assert _same(out_f, out_p), t
        assert fast.any_done is bool(out_p[2].any())
        kept.append((out_f[3]["episode"], out_f[3]["task"], out_p[3]["episode"], out_p[3]["task"]))
        assert _same(fast.state_dict(), plain.state_dict())
    for ef, tf, ep, tp in kept:
        assert torch.equal(ef, ep) and torch.equal(tf, tp)


# ---------------------------------------------------------------- whole rollout
@pytest.mark.parametrize("env_type", ["treasure_hunt_hyperx", "room_hyperx"])
def test_rollout_with_fast_act_is_identical(env_type):
    from config.loader import resolve
    from metalearner import MetaLearner

    over = {"progress_bar": ["false"], "num_frames": ["100000"], "num_processes": ["4"], "policy_num_steps": ["30"]}
    stores = []
    for fast in (True, False):
        torch.manual_seed(0)
        with tempfile.TemporaryDirectory() as d:
            learner = MetaLearner(resolve(env_type, over), d)
            if not fast:
                learner.agent.acting = lambda agent=learner.agent: agent.act
            for _ in range(2):
                learner.collect_rollout()
                learner.update()
            learner.collect_rollout()
            if learner.vae is not None:
                learner.vae.wait()
            s = learner.storage
            stores.append(copy.deepcopy((s.inputs, s.actions, s.log_probs, s.values, s.rewards, s.dones,
                                         {k: v.detach() for k, v in learner.policy.state_dict().items()})))
    assert _same(stores[0], stores[1])


# ---------------------------------------------------------------- Policy.evaluator (PPO minibatches)
@pytest.mark.parametrize("discrete", [True, False])
@pytest.mark.parametrize("embed", [True, False])
@pytest.mark.parametrize("normalise", [True, False])
@pytest.mark.parametrize("layers", [(32, 16), (8,)])
def test_evaluator_values_and_gradients_are_bit_identical(discrete, embed, normalise, layers):
    pol, dims = _policy(discrete, embed, normalise, layers=layers)
    prepare, evaluate = pol.evaluator()
    inputs = _inputs(dims, n=40)
    gen = torch.Generator().manual_seed(4)
    actions = torch.randint(4, (40,), generator=gen) if discrete else torch.randn(40, 3, generator=gen)
    rows = prepare(inputs)
    for idx in (torch.randperm(40, generator=gen)[:13], torch.arange(40)):
        mb = {k: v.index_select(0, idx) for k, v in inputs.items()}
        ref = pol.evaluate(mb, actions[idx])
        (ref[0].sum() * 0.5 + ref[1].mean() - 0.01 * ref[2].mean()).backward()
        ref_grads = [p.grad.clone() for p in pol.parameters()]
        pol.zero_grad(set_to_none=True)
        out = evaluate({k: v.index_select(0, idx) for k, v in rows.items()}, actions[idx])
        (out[0].sum() * 0.5 + out[1].mean() - 0.01 * out[2].mean()).backward()
        for a, b in zip(out, ref):
            assert torch.equal(a, b)
        for p, g in zip(pol.parameters(), ref_grads):
            assert torch.equal(p.grad, g)
        pol.zero_grad(set_to_none=True)


def test_evaluator_none_where_not_mirrored():
    pol, _ = _policy(True, False, True, parts=("state", "latent", "task"))
    pol.use_task = True
    assert pol.evaluator() is None


# ---------------------------------------------------------------- clip + direct Adam step
def _grads_model(seed=0, with_unused=False):
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    extra = torch.nn.Linear(2, 2) if with_unused else None
    params = list(m.parameters()) + (list(extra.parameters()) if extra is not None else [])
    return m, params


@pytest.mark.parametrize("discrete", [True, False])
def test_ppo_updates_with_fast_paths_match_plain_calls(discrete, monkeypatch):
    """Several annealed updates of a policy with an unused part (grad None: the fallbacks) and
    one without, against the same updater using policy.evaluate."""
    import algorithms.ppo as ppo
    from algorithms.storage import RolloutStorage

    T, N = 10, 4
    for ti in (False, True):
        torch.manual_seed(0)
        dims = {"state": 3, "latent": 4, **({"task": 4} if ti else {})}
        policy = Policy(dims, 5 if discrete else 2, discrete, [16], normalise={"state": True},
                        embed_dims={"latent": 8, "task": 8 if ti else None}, task_substitutes_latent=ti)
        policy.update_normalisers({"state": torch.randn(50, 3) * 3 + 1})
        st = RolloutStorage(T, N, dims, () if discrete else (2,), discrete, 1, "cpu")
        gen = torch.Generator().manual_seed(1)
        for v in st.inputs.values():
            v.normal_(generator=gen)
        if discrete:
            st.actions.random_(5, generator=gen)
        else:
            st.actions.normal_(generator=gen)
        st.evaluate_policy(policy)
        st.returns = st.values[:-1] + torch.randn(T, N, generator=gen)
        results = []
        for fast in (True, False):
            pol = copy.deepcopy(policy)
            up = ppo.PolicyUpdater(pol, "ppo", lr=1e-2, epochs=3, minibatches=4, clip=0.1, anneal_updates=5)
            with monkeypatch.context() as mp:
                if not fast:
                    mp.setattr(pol, "evaluator", lambda: None)
                torch.manual_seed(7)
                stats = [up.update(st) for _ in range(3)]
            results.append((stats, [p.detach().clone() for p in pol.parameters()],
                            {k: v for k, v in up.optimiser.state_dict()["state"].items()}))
        assert results[0][0] == results[1][0]
        assert _same(results[0][1], results[1][1])
        assert _same(results[0][2], results[1][2])


# ---------------------------------------------------------------- treasure step
class _PlainTreasure:
    """The treasure step/reset before the speed pass (in-place reset, copied info["pos"], the
    multiply by mountain_height always), applied to an env's state."""

    @staticmethod
    def reset_state(env, mask):
        env.pos = env.pos.clone()
        env.pos[mask] = env.start

    @staticmethod
    def step(env, actions):
        actions = actions.reshape(env.num_envs, 2).float().clamp(-1.0, 1.0)
        env.pos = (env.pos + 0.1 * actions).clamp(-env.bound, env.bound)
        d_top = torch.linalg.vector_norm(env.pos, dim=1)
        d_goal = torch.linalg.vector_norm(env.pos - env.goal, dim=1)
        on_mountain = d_top <= env.mountain_radius
        at_treasure = (d_goal <= env.treasure_radius) & ~on_mountain
        mountain = env.mountain_height * (d_top - env.mountain_radius) + env.timestep_penalty
        elsewhere = env.timestep_penalty * d_top.clamp_min(1.0)
        reward = torch.where(on_mountain, mountain, torch.where(at_treasure, env.treasure_reward, elsewhere))
        truncated = env._advance_time()
        info = {"pos": env.pos.clone(), "success": at_treasure.float()}
        return env._obs(d_top), reward, torch.zeros_like(truncated), truncated, info


@pytest.mark.parametrize("height", [1.0, 2.5])
def test_treasure_step_and_reset_match_the_plain_code(height):
    from environments.navigation.treasure_hunt import TreasureHunt

    N = 64
    fast = BAMDPWrapper(TreasureHunt(N, seed=3, max_episode_steps=9, mountain_height=height), 1)
    plain_env = TreasureHunt(N, seed=3, max_episode_steps=9, mountain_height=height)
    plain_env._reset_state = lambda mask: _PlainTreasure.reset_state(plain_env, mask)
    plain_env.step = lambda a: _PlainTreasure.step(plain_env, a)
    plain = BAMDPWrapper(plain_env, 1)
    assert _same(fast.reset(), plain.reset())
    gen = torch.Generator().manual_seed(0)
    kept = []
    for t in range(40):
        # aim some copies at the mountain top and the treasure so every reward case occurs
        a = torch.randn(N, 2, generator=gen) * 3
        out_f, out_p = fast.step(a), plain.step(a)
        assert _same(out_f, out_p), t
        kept.append((out_f[3]["pos"], out_p[3]["pos"]))
    for pf, pp in kept:  # uncopied info["pos"] keeps its values across later steps and resets
        assert torch.equal(pf, pp)


@pytest.mark.parametrize("episodes", [2, 3])
def test_any_done_of_the_general_step(episodes):
    env = BAMDPWrapper(make_env("GridNavi", num_envs=5, seed=1), episodes)
    env.reset()
    gen = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(3 * env.horizon):
        _, _, done, _ = env.step(torch.randint(env.action_space.n, (5,), generator=gen))
        assert env.any_done is bool(done.any())
        seen.add(env.any_done)
    assert seen == {True, False}


def test_belief_step_with_known_any_done_is_identical():
    from agent import BeliefUpdater
    from models.encoder import RNNEncoder

    torch.manual_seed(0)
    enc = RNNEncoder(3, 2, 5, hidden_size=12, action_embed=4, state_embed=6, reward_embed=2)
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(0.1 * torch.randn_like(p))
    N = 6
    upd = BeliefUpdater(enc, N, "cpu")
    assert upd.fused is not None
    gen = torch.Generator().manual_seed(1)
    hidden = enc.initial_hidden(N)
    with torch.inference_mode():
        for t in range(10):
            a, s, r = torch.randn(N, 2, generator=gen), torch.randn(N, 3, generator=gen), torch.randn(N, generator=gen)
            done = (torch.rand(N, generator=gen) < 0.3) if t % 2 else torch.zeros(N, dtype=torch.bool)
            ref = upd.step_flat(hidden, a, s, r, None, done)
            got = upd.step_flat(hidden, a, s, r, None, done, bool(done.any()))
            assert _same(list(got), list(ref))
            hidden = got[1]
