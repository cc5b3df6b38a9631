"""Policy updates move the policy the right way; tanh-squashed log-probs are exact."""
import math

import pytest
import torch

from algorithms.ppo import PolicyUpdater
from algorithms.storage import RolloutStorage
from models.policy import Policy


def _storage(discrete=True):
    T, N = 8, 4
    st = RolloutStorage(T, N, {"state": 3}, () if discrete else (2,), discrete, 1, "cpu")
    st.inputs["state"].normal_(generator=torch.Generator().manual_seed(0))
    return st


@pytest.mark.parametrize("algo,opt", [("ppo", "adam"), ("a2c", "rmsprop")])
def test_update_raises_probability_of_advantaged_action(algo, opt):
    torch.manual_seed(0)
    policy = Policy({"state": 3}, 5, True, [16])
    st = _storage()
    # half the steps took action 2 and did well, the other half took action 0 and did badly
    st.actions[:4] = 2
    st.actions[4:] = 0
    st.evaluate_policy(policy)
    st.returns = st.values[:-1].clone()
    st.returns[:4] += 1.0
    st.returns[4:] -= 1.0
    inputs = {"state": st.inputs["state"][:-1].reshape(-1, 3)}
    before = torch.softmax(policy(inputs)[0], -1)[:, 2].mean()
    PolicyUpdater(policy, algo, lr=1e-2, optimiser=opt, epochs=4, minibatches=2).update(st)
    after = torch.softmax(policy(inputs)[0], -1)[:, 2].mean()
    assert after > before + 0.01


def test_ppo_clipping_limits_the_step():
    """Same data, same init: a tiny clip range moves the policy far less than no clipping."""
    ratios = {}
    for clip in (0.01, 100.0):
        torch.manual_seed(1)
        policy = Policy({"state": 3}, 5, True, [16])
        st = _storage()
        st.actions[:4], st.actions[4:] = 2, 0
        st.evaluate_policy(policy)
        old = st.log_probs.clone()
        st.returns = st.values[:-1].clone()
        st.returns[:4] += 1.0
        st.returns[4:] -= 1.0
        PolicyUpdater(policy, "ppo", lr=1e-2, epochs=10, minibatches=1, clip=clip, entropy_coef=0.0).update(st)
        st.evaluate_policy(policy)
        ratios[clip] = float((st.log_probs[:4] - old[:4]).exp().mean())
    assert 1.0 < ratios[0.01] < 1.5 < ratios[100.0]


def test_tanh_squashed_log_prob_matches_change_of_variables():
    torch.manual_seed(2)
    policy = Policy({"state": 3}, 2, False, [8], tanh_squash=True, init_std=0.7)
    x = {"state": torch.randn(6, 3)}
    act = policy.act(x)
    actor_out, _ = policy(x)
    base = torch.distributions.Normal(actor_out, policy.logstd.exp())
    dist = torch.distributions.TransformedDistribution(base, [torch.distributions.TanhTransform()])
    expected = dist.log_prob(act.env_action.clamp(-1 + 1e-6, 1 - 1e-6)).sum(-1)
    assert torch.allclose(policy.log_prob(actor_out, act.action), expected, atol=1e-3)
    assert bool((act.env_action.abs() <= 1).all())


@torch.no_grad()
def test_gaussian_log_prob_and_entropy_known_values():
    policy = Policy({"state": 1}, 1, False, [4], init_std=1.0)
    actor_out = torch.zeros(1, 1)
    assert abs(float(policy.log_prob(actor_out, torch.zeros(1, 1))) + 0.5 * math.log(2 * math.pi)) < 1e-6
    assert abs(float(policy._entropy(actor_out)[0]) - 0.5 * math.log(2 * math.pi * math.e)) < 1e-6


@pytest.mark.parametrize("method", ["rnn_hn", "splagger"])
def test_recomputed_latents_of_some_copies_equal_those_of_all(method, tiny_cfg, tmp_path):
    from metalearner import MetaLearner

    learner = MetaLearner(tiny_cfg("gridworld_varibad", method=method, num_frames=128), str(tmp_path))
    learner.collect_rollout()
    envs = torch.tensor([3, 0])
    from components.encoder_rl import EncoderRL

    rl = learner.component(EncoderRL)
    with torch.no_grad():
        full, part = rl.recompute_latent(learner.storage), rl.recompute_latent(learner.storage, envs)
    assert part.shape == (learner.storage.num_steps, 2, full.shape[-1])
    assert torch.allclose(part, full[:, envs], atol=1e-6)


def test_minibatch_by_env_recomputes_each_copy_once_per_epoch(tiny_cfg, tmp_path):
    from metalearner import MetaLearner

    cfg = tiny_cfg("gridworld_varibad", method="rnn_hn", num_frames=128, ppo_minibatch_by_env=True,
                   ppo_num_epochs=3, ppo_num_minibatch=2)
    learner = MetaLearner(cfg, str(tmp_path))
    from components.encoder_rl import EncoderRL

    rl = learner.component(EncoderRL)
    calls, original = [], rl.recompute_latent
    rl.recompute_latent = lambda s, envs=None: (calls.append(envs), original(s, envs))[1]
    learner.collect_rollout()
    learner.update()
    assert len(calls) == 3 * 2 and all(c is not None and len(c) == 2 for c in calls)
    for epoch in range(3):
        assert sorted(torch.cat(calls[2 * epoch: 2 * epoch + 2]).tolist()) == [0, 1, 2, 3]
