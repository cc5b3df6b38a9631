"""Tests of the HyperX exploration bonuses: RND, return normaliser, combined bonus."""
import pytest
import torch

from exploration.bonus import ExplorationBonus
from utils.running_stats import ReturnNormaliser
from exploration.rnd import RND
from utils.running_stats import RunningMeanStd

torch.set_num_threads(1)


def _pop_var(values):
    return torch.tensor(values).var(unbiased=False).item()


# ----- RND ----------------------------------------------------------------------------
def test_rnd_bonus_falls_on_trained_inputs_and_stays_high_on_novel_ones():
    torch.manual_seed(0)
    rnd = RND([2, 3], lr=1e-3)  # default architecture and weight scale 10
    g = torch.Generator().manual_seed(1)
    seen = [torch.rand(64, 2, generator=g), torch.rand(64, 3, generator=g)]
    novel = [torch.rand(64, 2, generator=g) + 3, torch.rand(64, 3, generator=g) - 3]
    before_seen, before_novel = rnd.bonus(seen), rnd.bonus(novel)
    assert before_seen.shape == (64,) and (before_seen > 0).all()
    losses = [rnd.update(seen) for _ in range(150)]
    after_seen, after_novel = rnd.bonus(seen).mean(), rnd.bonus(novel).mean()
    assert losses[-1] < 0.2 * losses[0]
    assert after_seen < 0.2 * before_seen.mean()
    assert after_novel > 10 * after_seen
    assert after_novel > 0.3 * before_novel.mean()


def test_rnd_prior_is_frozen_and_scaled():
    torch.manual_seed(0)
    a = RND([4], init_weight_scale=1.0)
    torch.manual_seed(0)
    b = RND([4], init_weight_scale=10.0)
    pa, pb = dict(a.prior.named_parameters()), dict(b.prior.named_parameters())
    for k, v in pa.items():
        assert torch.allclose(pb[k], 10 * v) and not pb[k].requires_grad
    before = {k: v.clone() for k, v in pb.items()}
    b.update([torch.randn(8, 4)])
    assert all(torch.equal(before[k], v) for k, v in b.prior.named_parameters())
    # leading dims are free: [T, N, d] -> [T, N]
    assert b.bonus([torch.randn(5, 3, 4)]).shape == (5, 3)


def test_rnd_input_normalisation_centres_and_scales_out_of_place():
    rnd = RND([2], normalise_inputs=True)
    x = torch.randn(1000, 2) * torch.tensor([10.0, 0.1]) + torch.tensor([5.0, -3.0])
    rnd.observe([x])
    copy = x.clone()
    prepared = rnd._prepare([x])[0]
    assert torch.equal(x, copy)  # caller's tensor untouched
    assert torch.allclose(prepared.mean(0), torch.zeros(2), atol=1e-3)
    assert torch.allclose(prepared.std(0), torch.ones(2), atol=1e-2)
    rnd.bonus([x])
    assert torch.equal(x, copy)


# ----- normaliser ---------------------------------------------------------------------
def test_running_mean_std_matches_population_stats():
    rms = RunningMeanStd(())
    data = torch.randn(7, 5) * 3 + 2
    for row in data:
        rms.update(row)
    assert rms.mean.item() == pytest.approx(data.mean().item(), rel=1e-3)
    assert rms.var.item() == pytest.approx(data.var(unbiased=False).item(), rel=1e-3)
    one = RunningMeanStd(())
    one.update(torch.tensor([4.0]))  # a single value (one env copy) is fine, no NaN
    assert torch.isfinite(one.var) and one.mean.item() == pytest.approx(4.0, rel=1e-3)


def test_return_normaliser_known_answer_with_done_in_the_middle():
    gamma = 0.5
    norm = ReturnNormaliser(num_envs=2, gamma=gamma)
    rewards = torch.tensor([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    dones = torch.tensor([[False, False], [True, False], [False, False]])  # copy 0 ends after step 1
    out = norm(rewards, dones)
    # copy 0: 1, 0.5*1+1 = 1.5 (BAMDP ends), then a fresh 1; copy 1: 2, 3, 3.5
    returns = [1.0, 2.0, 1.5, 3.0, 1.0, 3.5]
    var = _pop_var(returns)
    assert norm.rms.var.item() == pytest.approx(var, rel=1e-3)
    assert torch.allclose(out, rewards / (var + 1e-8) ** 0.5, rtol=1e-3)
    assert norm.ret.tolist() == pytest.approx([1.0, 3.5])  # carried to the next rollout
    # next rollout: copy 0 continues its BAMDP (0.5*1 + 1), copy 1 ends after step 0
    norm.update(torch.tensor([[1.0, 2.0]]), torch.tensor([[False, True]]))
    assert norm.rms.var.item() == pytest.approx(_pop_var(returns + [1.5, 0.5 * 3.5 + 2]), rel=1e-3)
    assert norm.ret.tolist() == pytest.approx([1.5, 0.0])


def test_return_normaliser_clip_no_mean_subtraction_and_state_dict():
    norm = ReturnNormaliser(num_envs=3, gamma=0.9, clip=0.5)
    r = torch.tensor([[0.1, 0.1, 50.0]] * 4)
    out = norm(r, torch.zeros(4, 3))
    assert (out > 0).all() and out.max() == 0.5 and out.min() < 0.01  # no centring, clipped
    other = ReturnNormaliser(num_envs=3, gamma=0.9, clip=0.5)
    other.load_state_dict(norm.state_dict())
    r2 = torch.rand(3, 3)
    assert torch.equal(norm(r2, torch.zeros(3, 3)), other(r2, torch.zeros(3, 3)))
    frozen = norm.state_dict()
    norm(r2, torch.zeros(3, 3), update=False)
    assert torch.equal(frozen["ret"], norm.ret)


# ----- combined bonus -----------------------------------------------------------------
def _bonus(**kw):
    torch.manual_seed(0)
    args = {"state_dim": 3, "belief_dim": 4, "num_envs": 2, "gamma": 0.9, "rnd_prior_layers": (32,),
            "rnd_predictor_layers": (32,), "rnd_output_dim": 16, "rnd_lr": 1e-2}
    args.update(kw)
    return ExplorationBonus(**args)


def _rollout(T=5, N=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(T, N, 3, generator=g), torch.rand(T, N, 4, generator=g), torch.zeros(T, N, dtype=torch.bool)


def test_annealing_weight_start_middle_end():
    bonus = _bonus()
    assert bonus.set_progress(0, 100) == 1.0
    s, b, d = _rollout()
    full, _ = bonus.compute(s, b, d, update_stats=False)
    assert bonus.set_progress(50, 100) == pytest.approx(0.5)
    half, stats = bonus.compute(s, b, d, update_stats=False)
    assert torch.allclose(half, 0.5 * full) and stats["anneal_weight"] == 0.5
    assert bonus.set_progress(100, 100) == 0.0
    assert torch.equal(bonus.compute(s, b, d, update_stats=False)[0], torch.zeros(5, 2))
    assert bonus.set_progress(150, 100) == 0.0  # clamped
    off = _bonus(anneal=False)
    assert off.set_progress(50, 100) == 1.0


def test_first_compute_works_without_pretraining():
    bonus = _bonus(hyperstate=True, state=True, belief=True, vae_error=True,
                   weight_state=2.0, weight_vae_error=0.5, clip=10.0)
    s, b, d = _rollout()
    d[2, 0] = True
    vae = torch.rand(5, 2)
    total, stats, parts = bonus.compute(s, b, d, vae_error=lambda: vae, return_parts=True)
    assert total.shape == (5, 2) and torch.isfinite(total).all() and (total > 0).all()
    assert set(parts) == {"hyperstate", "state", "belief", "vae_error"}
    assert torch.allclose(total, sum(parts.values()))
    # each part = weight * raw / sqrt(var of its discounted return)
    vn = bonus.normalisers["vae_error"]
    assert torch.allclose(parts["vae_error"], 0.5 * vae / (vn.rms.var + 1e-8).sqrt())
    for k in ("hyperstate", "state", "belief", "vae_error"):
        assert f"{k}_raw" in stats and f"{k}_normalised" in stats
    with pytest.raises(ValueError):
        bonus.compute(s, b, d)  # vae_error bonus on but no error given


def test_state_expl_idx_and_update_rnd_lowers_the_bonus():
    bonus = _bonus(hyperstate=True, state=True, state_expl_idx=[0])
    assert bonus.rnds["state"].input_dims == [1] and bonus.rnds["hyperstate"].input_dims == [1, 4]
    s, b, d = _rollout()
    before, _ = bonus.compute(s, b, d, update_stats=False)
    s2 = s.clone()
    s2[..., 1:] += 100.0  # dims outside state_expl_idx are ignored
    assert torch.equal(before, bonus.compute(s2, b, d, update_stats=False)[0])
    raw0 = bonus.rnds["hyperstate"].bonus([s[..., :1], b]).mean()
    for _ in range(100):
        losses = bonus.update_rnd(s.reshape(-1, 3), b.reshape(-1, 4))
    assert set(losses) == {"rnd/loss_hyperstate", "rnd/loss_state"}
    assert bonus.rnds["hyperstate"].bonus([s[..., :1], b]).mean() < 0.5 * raw0


def test_state_dict_roundtrip_gives_identical_bonuses():
    a = _bonus(state=True, vae_error=True)
    s, b, d = _rollout()
    vae = torch.rand(5, 2)
    a.compute(s, b, d, vae_error=vae)
    a.update_rnd(s.reshape(-1, 3), b.reshape(-1, 4))
    a.set_progress(30, 100)
    torch.manual_seed(123)  # different random init
    c = ExplorationBonus(3, 4, 2, 0.9, state=True, vae_error=True, rnd_prior_layers=(32,),
                         rnd_predictor_layers=(32,), rnd_output_dim=16, rnd_lr=1e-2)
    c.load_state_dict(a.state_dict())
    s2, b2, d2 = _rollout(seed=1)
    ta, _ = a.compute(s2, b2, d2, vae_error=vae)
    tc, _ = c.compute(s2, b2, d2, vae_error=vae)
    assert torch.equal(ta, tc)
    assert a.update_rnd(s2.reshape(-1, 3), b2.reshape(-1, 4)) == c.update_rnd(s2.reshape(-1, 3), b2.reshape(-1, 4))
    with pytest.raises(ValueError):
        _bonus().load_state_dict(a.state_dict())


def test_state_only_bonus_needs_no_beliefs():
    bonus = _bonus(hyperstate=False, state=True, belief_dim=0)
    assert not bonus.uses_beliefs
    s, _, d = _rollout()
    total, _ = bonus.compute(s, None, d)
    assert total.shape == (5, 2)
    assert set(bonus.update_rnd(s.reshape(-1, 3))) == {"rnd/loss_state"}
    with pytest.raises(ValueError):
        _bonus(hyperstate=True, belief_dim=0)


def test_hyperx_run_logs_eval_bonus_returns_and_bonus_plots(tmp_path):
    """The trainer reports per-episode bonus returns in evaluation and plots the bonus."""
    import os

    from config.loader import resolve
    from metalearner import MetaLearner
    from tests.conftest import tiny

    cfg = resolve("cds_hyperx", values=tiny(num_frames=256, eval_interval=2, vis_interval=2,
                                            env_kwargs={"max_episode_steps": 30}))
    learner = MetaLearner(cfg, str(tmp_path))
    result = learner.train()
    assert result["return_bonus_hyperstate"][0] > 0 and result["return_bonus_vae_error"][0] > 0
    assert result["return_bonus"] == [0.0]  # fully annealed at the end of training
    assert "2_bonus.png" in os.listdir(tmp_path / "plots")
    import csv

    rows = list(csv.DictReader(open(tmp_path / "progress.csv")))
    assert "return_bonus_hyperstate_episode_1" in rows[0]
    # iteration 0: the normalisers have seen no rollout, so no bonus is reported (was 1.27e7)
    assert rows[0]["return_bonus_hyperstate_episode_1"] == "" and float(rows[-1]["return_bonus_hyperstate_episode_1"]) > 0
