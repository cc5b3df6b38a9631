"""MAML-TRPO (algorithms/maml.py, algorithms/linear_baseline.py, trainers/maml.py): hand-computed
inner steps, vmap vs loop, baseline with variable-length episodes, advantages, MIME's eta gradient,
config rules, and a tiny training run whose resume is bit-equal to the uninterrupted run."""
import math

import pytest
import torch

from algorithms.linear_baseline import LinearFeatureBaseline
from algorithms.maml import (EtaWeight, Episodes, GaussianMLPPolicy, MAMLSettings, MAMLTRPO, discounted_returns, gae,
                             masked_normalise)
from config.errors import ConfigError
from config.loader import resolve


def _episodes(m=3, t=6, f=4, d=2, a=2, seed=0, bonus=False) -> Episodes:
    g = torch.Generator().manual_seed(seed)
    eps = Episodes(obs=torch.randn(m, t, f, d, generator=g), actions=torch.randn(m, t, f, a, generator=g),
                   rewards=torch.randn(m, t, f, generator=g), mask=torch.ones(m, t, f), returns=torch.randn(m, generator=g))
    if bonus:
        eps.bonus = torch.randn(m, t, f, generator=g)
    return eps


# ----------------------------------------------------------------------------- returns / GAE
def test_discounted_returns_and_gae_known_answers():
    rew = torch.tensor([[1.0], [2.0], [3.0]])  # T=3, F=1
    mask = torch.ones(3, 1)
    ret = discounted_returns(rew, mask, 0.5)
    assert torch.allclose(ret, torch.tensor([[1 + 0.5 * 2 + 0.25 * 3], [2 + 0.5 * 3], [3.0]]))
    values = torch.tensor([[0.5], [1.0], [2.0]])
    # lambda = 1: GAE = return - value
    assert torch.allclose(gae(rew, values, mask, 0.5, 1.0), ret - values)
    # lambda = 0: one-step TD errors, the value after the last step is 0
    td = torch.tensor([[1 + 0.5 * 1.0 - 0.5], [2 + 0.5 * 2.0 - 1.0], [3 - 2.0]])
    assert torch.allclose(gae(rew, values, mask, 0.5, 0.0), td)
    # a padded step (episode ended after 2 steps) contributes nothing
    mask2 = torch.tensor([[1.0], [1.0], [0.0]])
    assert torch.allclose(discounted_returns(rew, mask2, 0.5), torch.tensor([[2.0], [2.0], [0.0]]))


def test_masked_normalise_per_task():
    x = torch.tensor([[[1.0, 2.0], [3.0, 100.0]]])  # M=1, T=2, F=2
    mask = torch.tensor([[[1.0, 1.0], [1.0, 0.0]]])
    out = masked_normalise(x, mask)
    valid = out[mask > 0]
    assert abs(float(valid.mean())) < 1e-6 and abs(float(valid.pow(2).mean()) - 1.0) < 1e-4
    assert float(out[0, 1, 1]) == 0.0


# ----------------------------------------------------------------------------- baseline
def test_linear_baseline_handles_variable_length_episodes():
    g = torch.Generator().manual_seed(0)
    t, f, d = 8, 3, 2
    obs = torch.randn(t, f, d, generator=g)
    lengths = torch.tensor([8, 5, 2])
    mask = (torch.arange(t)[:, None] < lengths[None]).float()
    returns = torch.randn(t, f, generator=g)
    padded_obs, padded_ret = obs.clone(), returns.clone()
    padded_obs[mask == 0] = float("nan")  # garbage after an episode ended must not matter
    padded_ret[mask == 0] = 1e6
    base = LinearFeatureBaseline(d, reg_coeff=1e-5)
    w = base.fit(padded_obs, padded_ret, mask)
    # reference: ridge regression on the valid rows only
    feats = LinearFeatureBaseline.features(obs, torch.ones(t, f))[mask > 0]
    y = returns.double()[mask > 0]
    ref = torch.linalg.solve(feats.T @ feats + 1e-5 * torch.eye(2 * d + 4, dtype=torch.float64), feats.T @ y)
    assert torch.allclose(w, ref, atol=1e-6)
    pred = base.predict(padded_obs, mask)
    assert torch.isfinite(pred).all() and (pred[mask == 0] == 0).all()
    # the time features use the step index t/100
    assert torch.allclose(LinearFeatureBaseline.features(obs, mask)[3, 0, 2 * d], torch.tensor(0.03, dtype=torch.float64))


def test_linear_baseline_batched_fit_equals_per_task_fits_and_nan_raises():
    g = torch.Generator().manual_seed(1)
    obs, ret, mask = torch.randn(3, 5, 4, 2, generator=g), torch.randn(3, 5, 4, generator=g), torch.ones(3, 5, 4)
    base = LinearFeatureBaseline(2)
    w = base.fit(obs, ret, mask)
    for m in range(3):
        assert torch.allclose(w[m], LinearFeatureBaseline(2).fit(obs[m], ret[m], mask[m]), atol=1e-8)
    obs[0, 0, 0, 0] = float("nan")
    with pytest.raises(RuntimeError, match="non-finite"):
        base.fit(obs, ret, mask)


# ----------------------------------------------------------------------------- inner loop
def test_inner_step_equals_hand_computed_step():
    """Linear Gaussian policy mu = W o + b, std = exp(s): grad log pi is known in closed form."""
    pol = GaussianMLPPolicy(2, 1, hidden=())
    with torch.no_grad():
        pol.mu.weight.copy_(torch.tensor([[0.3, -0.2]]))
        pol.mu.bias.fill_(0.1)
        pol.log_std.fill_(math.log(0.5))
    eps = _episodes(m=2, t=3, f=2, d=2, a=1)
    adv = torch.randn(2, 3, 2)
    lr = 0.7
    learner = MAMLTRPO(pol, MAMLSettings(fast_lr=lr))
    adapted = learner.adapt(pol.params(), [eps], first_order=True, use_bonus=False, advantages=[adv])
    for m in range(2):
        o, a, A = eps.obs[m].reshape(-1, 2), eps.actions[m].reshape(-1), adv[m].reshape(-1)
        mu = o @ torch.tensor([0.3, -0.2]) + 0.1
        z = (a - mu) / 0.25  # (a - mu) / sigma^2
        n = len(A)
        g_w = -(A * z) @ o / n
        g_b = -(A * z).sum() / n
        g_s = -(A * ((a - mu) ** 2 / 0.25 - 1.0)).sum() / n
        assert torch.allclose(adapted["mu.weight"][m], torch.tensor([[0.3, -0.2]]) - lr * g_w, atol=1e-6)
        assert torch.allclose(adapted["mu.bias"][m], torch.tensor([0.1]) - lr * g_b, atol=1e-6)
        assert torch.allclose(adapted["log_std"][m], torch.tensor([math.log(0.5)]) - lr * g_s, atol=1e-6)


def test_vmapped_second_order_adaptation_equals_loop():
    torch.manual_seed(0)
    pol = GaussianMLPPolicy(2, 2, hidden=(8,))
    eps = _episodes()
    learner = MAMLTRPO(pol, MAMLSettings(fast_lr=0.5))
    adv = learner.advantages(eps, False)
    params = pol.params()
    adapted = learner.adapt(params, [eps], first_order=False, use_bonus=False, advantages=[adv])
    loop = []
    for m in range(eps.num_tasks):
        loss = learner._inner_loss(params, eps.obs[m], eps.actions[m], adv[m], eps.mask[m])
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        loop.append({n: p - 0.5 * g for (n, p), g in zip(params.items(), grads)})
    for n in params:
        assert torch.allclose(adapted[n], torch.stack([d[n] for d in loop]), atol=1e-6)
    # the meta-gradient through the inner step (second order) agrees too
    f1 = sum(adapted[n].pow(2).sum() for n in params)
    f2 = sum(torch.stack([d[n] for d in loop]).pow(2).sum() for n in params)
    g1 = torch.autograd.grad(f1, list(params.values()))
    g2 = torch.autograd.grad(f2, list(params.values()))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(g1, g2))
    # first order drops exactly the second-order part: the meta-gradients differ
    fo = learner.adapt(params, [eps], first_order=True, use_bonus=False, advantages=[adv])
    g3 = torch.autograd.grad(sum(fo[n].pow(2).sum() for n in params), list(params.values()))
    assert not all(torch.allclose(a, b, atol=1e-5) for a, b in zip(g1, g3))


def test_trpo_meta_step_respects_max_kl():
    torch.manual_seed(1)
    pol = GaussianMLPPolicy(2, 2, hidden=(8,))
    learner = MAMLTRPO(pol, MAMLSettings(fast_lr=0.3))
    train, valid = _episodes(seed=1), _episodes(seed=2)
    stats = learner.step([train], valid, use_bonus=False, update_eta=False)
    assert stats["step_fraction"] > 0 and 0 < stats["kl_after"] < learner.s.trpo.max_kl
    assert stats["loss_after"] < stats["loss_before"]


def test_e_maml_term_adds_the_pre_update_gradient():
    train, valid = _episodes(seed=3), _episodes(seed=4)
    valid.returns = torch.tensor([1.0, 2.0, 4.0])
    grads = {}
    for e_maml in (False, True):
        torch.manual_seed(0)
        pol = GaussianMLPPolicy(2, 2, hidden=(8,))
        learner = MAMLTRPO(pol, MAMLSettings(e_maml=e_maml))
        adv = learner.advantages(valid, False)
        out = learner.surrogate([train], valid, adv, False, True)
        grads[e_maml] = torch.autograd.grad(out["loss"], list(pol.parameters()))
        if e_maml:
            assert abs(float(out["e_maml_loss"].detach())) < 1e-6  # value 0 at theta_old (centred weights, ratio 1)
    assert not all(torch.allclose(a, b) for a, b in zip(grads[False], grads[True]))


# ----------------------------------------------------------------------------- MIME's eta
def _eta_problem(first_order: bool):
    torch.manual_seed(0)
    pol = GaussianMLPPolicy(2, 2, hidden=(8,))
    eta = EtaWeight(0.1, learnable=True)
    learner = MAMLTRPO(pol, MAMLSettings(fast_lr=0.5, first_order=first_order), eta)
    return learner, _episodes(seed=5, bonus=True), _episodes(seed=6, bonus=True)


def test_eta_gradient_finite_and_nonzero_with_second_order():
    learner, train, valid = _eta_problem(first_order=False)
    adv = learner.advantages(valid, True).detach()
    out = learner.surrogate([train], valid, adv, True, True, train_adv=[learner.advantages(train, True)])
    (g,) = torch.autograd.grad(out["eta_loss"], [learner.eta.logit])
    assert torch.isfinite(g) and abs(float(g)) > 1e-8
    before = float(learner.eta.value().detach())
    stats = learner.step([train], valid, use_bonus=True, update_eta=True)
    assert stats["eta_grad"] != 0.0 and abs(stats["eta_step"]) <= 0.3 + 1e-6
    assert float(learner.eta.value().detach()) != before


def test_eta_refused_under_first_order():
    learner, train, valid = _eta_problem(first_order=True)
    with pytest.raises(ValueError, match="first-order"):
        learner.step([train], valid, use_bonus=True, update_eta=True)
    with pytest.raises(ConfigError, match="second-order"):
        resolve("nav_wide_ring_mime", values={"maml_first_order": True})


def test_eta_mix_weights():
    eta = EtaWeight(0.25, floor=0.05)
    mixed = eta.mix(torch.tensor(2.0), torch.tensor(4.0))
    assert torch.allclose(mixed, torch.tensor((1.05 - 0.25) * 2.0 + (0.25 + 0.05) * 4.0))


def test_config_rules():
    with pytest.raises(ConfigError, match="use_vime"):
        resolve("nav_wide_ring_maml", values={"adapt_eta": True})
    with pytest.raises(ConfigError, match="e_maml"):
        resolve("nav_wide_ring_emaml", values={"use_vime": True})
    cfg = resolve("nav_wide_ring_mime")
    assert cfg.trainer == "maml" and cfg.use_vime and cfg.adapt_eta and cfg.maml_meta_batch == 10
    assert resolve("halfcheetah_vel_maml").env_kwargs["max_episode_steps"] == 100


# ----------------------------------------------------------------------------- the trainer
def _tiny_cfg(preset: str, iterations: int, **extra):
    """A few-second run; the ring's dense reward, since with a sparse reward that is never reached the
    extrinsic rewards are all 0, the normalised advantages then do not depend on eta, nor does anything."""
    m, f, h = 2, 3, 15
    values = dict(maml_meta_batch=m, maml_fast_batch=f, num_frames=m * f * h * 2 * iterations, pre_epochs=0, eta_lr=1.0,
                  dyn_warmup_updates=2, policy_layers=[8], progress_bar=False, eval_interval=1, vis_interval=1000,
                  log_interval=1, save_interval=1, env_kwargs={"max_episode_steps": h, "sparse": False}, dyn_hidden=[8])
    values.update(extra)
    return resolve(preset, values=values)


def _params(trainer):
    out = {f"policy.{k}": v.clone() for k, v in trainer.policy.state_dict().items()}
    if trainer.dynamics is not None:
        out.update({f"bnn.{k}": v.clone() for k, v in trainer.dynamics.bnn.state_dict().items()})
    if trainer.eta is not None:
        out["eta"] = trainer.eta.logit.detach().clone()
    return out


def test_tiny_mime_run_trains_and_resume_is_bit_equal(tmp_path):
    from trainers import build_trainer

    straight = build_trainer(_tiny_cfg("nav_wide_ring_mime", 2), str(tmp_path / "a"))
    init = _params(straight)
    res = straight.train()
    assert straight.iter == 2 and straight.frames == 2 * 2 * 3 * 15 * 2
    assert len(res["returns"]) == 2 and len(res["success"]) == 2  # pre- and post-update
    final = _params(straight)
    assert any(not torch.equal(init[k], final[k]) for k in init)  # it trained (policy, dynamics, eta)
    assert not torch.equal(init["eta"], final["eta"])  # eta moved once the bonus was active

    first = build_trainer(_tiny_cfg("nav_wide_ring_mime", 1), str(tmp_path / "b"))
    first.train()
    resumed = build_trainer(_tiny_cfg("nav_wide_ring_mime", 2), str(tmp_path / "b"), resume=True)
    assert resumed.iter == 1
    resumed.train()
    after = _params(resumed)
    for k in final:
        assert torch.equal(final[k], after[k]), k
    rows = (tmp_path / "a" / "progress.csv").read_text().splitlines()
    assert rows[0].startswith("return_episode_1,return_episode_2") and len(rows) == 4  # header + iterations 0..2


def test_cli_trains_a_maml_preset(tmp_path, capsys):
    from main import main

    argv = ["--env-type", "nav_dense_maml", "--num_frames", "160", "--maml_meta_batch", "2", "--maml_fast_batch", "2",
            "--env_kwargs", '{"max_episode_steps": 20}', "--results_log_dir", str(tmp_path), "--progress_bar", "false",
            "--policy_layers", "8"]
    assert main(argv) == 0
    (csv,) = tmp_path.glob("*/*/progress.csv")
    rows = csv.read_text().splitlines()
    assert len(rows) == 3  # header, the untrained agent, after the one meta-iteration (160 frames)
    pre = float(rows[-1].split(",")[0])
    assert pre < 0  # dense reward: -distance to the goal
    assert main(argv + ["--maml_num_inner_steps", "0"]) == 2  # config errors exit with status 2
    assert "maml_num_inner_steps must be >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("preset", ["nav_wide_ring_emaml", "nav_wide_ring_maml_noise", "halfcheetah_vel_maml"])
def test_one_meta_iteration_of_each_family(preset, tmp_path):
    """One batched env of M*F copies, copy i on task i // F; every variant's iteration runs and logs."""
    from trainers import build_trainer

    kwargs = {"max_episode_steps": 10} if preset.startswith("halfcheetah") else {"max_episode_steps": 10, "sparse": False}
    trainer = build_trainer(_tiny_cfg(preset, 1, env_kwargs=kwargs), str(tmp_path))
    tasks = trainer.env.sample_tasks(2)
    eps = trainer.collect(trainer.env, tasks, None)
    assert torch.equal(trainer.env.get_task(), tasks.repeat_interleave(3, 0))
    assert eps.obs.shape == (2, 10, 3, trainer.env.obs_dim) and eps.mask.sum() == 2 * 10 * 3
    stats = trainer.train_iteration()
    assert trainer.frames == 2 * 3 * 10 * 2
    assert set(stats["maml"]) >= {"Train-0/Returns", "Valid/Returns", "Train-0/Success"}
    assert ("e_maml_loss" in stats["trpo"]) == preset.endswith("emaml")
    trainer.check_finite(stats)


def test_every_maml_preset_resolves_to_a_registered_env():
    from config.loader import env_types
    from environments import ENVS

    presets = [e for e in env_types() if resolve(e).trainer == "maml"]
    assert {"nav_wide_ring_maml", "nav_wide_ring_mime", "nav_wide_ring_maml_expl", "nav_wide_ring_maml_noise",
            "nav_wide_ring_emaml", "halfcheetah_vel_maml", "ant_goal_maml"} <= set(presets)
    for name in presets:
        cfg = resolve(name)
        assert cfg.env_name in ENVS
        assert cfg.use_vime == name.endswith(("_mime", "_maml_expl")) and cfg.adapt_eta == name.endswith("_mime")
        assert cfg.e_maml == name.endswith("emaml") and cfg.add_noise == name.endswith("noise")


@pytest.mark.parametrize("mode", ["elementwise", "trajectory"])
def test_e_maml_gradient_known_answer(mode):
    """At theta_old the E-MAML term's gradient is the score-function term of the pre-update episodes:
    elementwise  -mean_m masked_mean(grad log pi(a_pre) * A_valid)
    trajectory   -mean_m w_m masked_mean(grad log pi(a_pre)),  w = post-update returns standardised across tasks."""
    from algorithms.maml import gaussian_log_prob, masked_mean

    torch.manual_seed(0)
    pol = GaussianMLPPolicy(2, 2, hidden=(8,))
    learner = MAMLTRPO(pol, MAMLSettings(e_maml=True, e_maml_mode=mode))
    train, valid = _episodes(seed=3), _episodes(seed=4)
    valid.returns = torch.tensor([1.0, 2.0, 4.0])
    adv = learner.advantages(valid, False)
    params = pol.params()
    out = learner.surrogate([train], valid, adv, False, True)
    got = torch.autograd.grad(out["e_maml_loss"], list(params.values()))
    logp = gaussian_log_prob(train.actions, *pol(train.obs))
    if mode == "elementwise":
        ref_loss = -masked_mean(logp * adv, train.mask).mean()
    else:
        w = (valid.returns - valid.returns.mean()) / valid.returns.std(unbiased=False)
        ref_loss = -(masked_mean(logp, train.mask) * w).mean()
    ref = torch.autograd.grad(ref_loss, list(params.values()))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got, ref))


def test_test_time_adaptation_command_writes_test_result(tmp_path, capsys):
    """``python main.py --test RUN_DIR --num_steps K``: return/success before and after each of K
    inner steps on the fixed test tasks, into test_result.csv; the checkpoint is left as it was."""
    import csv
    import os

    from main import main

    argv = ["--env-type", "nav_dense_maml", "--num_frames", "160", "--maml_meta_batch", "2", "--maml_fast_batch", "2",
            "--env_kwargs", '{"max_episode_steps": 20}', "--results_log_dir", str(tmp_path), "--progress_bar", "false",
            "--policy_layers", "8"]
    assert main(argv) == 0
    (run,) = [p.parent for p in tmp_path.glob("*/*/config.json")]
    ckpt = os.path.join(run, "checkpoints", "checkpoint.pt")
    before = open(ckpt, "rb").read()
    assert main(["--test", str(run), "--num_steps", "3"]) == 0
    rows = list(csv.DictReader(open(os.path.join(run, "test_result.csv"))))
    assert [int(r["inner_step"]) for r in rows] == [0, 1, 2, 3]
    assert all(float(r["return"]) < 0 and 0 <= float(r["success"]) <= 1 for r in rows)
    assert open(ckpt, "rb").read() == before
    assert main(["--test", str(run), "--lr_policy", "1"]) == 2  # only --num_steps/--device/--num_threads
    grid = tmp_path / "grid"
    assert main(["--env-type", "gridworld_varibad", "--num_frames", "256", "--num_processes", "4", "--policy_num_steps",
                 "32", "--results_log_dir", str(grid), "--progress_bar", "false", "--precollect_len", "0"]) == 0
    (grid_run,) = [p.parent for p in grid.glob("*/*/config.json")]
    assert main(["--test", str(grid_run)]) == 2
    assert "maml" in capsys.readouterr().err
