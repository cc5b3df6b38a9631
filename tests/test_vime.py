"""VIME's Bayesian dynamics model and information gain (models/bnn.py, exploration/vime.py)."""
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from exploration.vime import BonusNormaliser, VIMEDynamics, info_gain, info_gain_loop
from models.bnn import BayesianDynamics, gaussian_kl


def _bnn(**kw) -> BayesianDynamics:
    torch.manual_seed(0)
    args = dict(hidden=(16,), prior_sd=0.1, likelihood_sd=0.1, n_samples=3)
    args.update(kw)
    return BayesianDynamics(3, 2, **args)


def _data(n=128, seed=0, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    x = 0.5 * torch.randn(n, 3, generator=g) + shift
    return x, torch.stack([torch.sin(2 * x[:, 0]), x[:, 1] * x[:, 2]], 1)


def test_gaussian_kl_matches_torch():
    g = torch.Generator().manual_seed(0)
    mp, mq, sp, sq = (torch.randn(4, 5, generator=g) for _ in range(4))
    sp, sq = sp.abs() + 0.1, sq.abs() + 0.1
    assert torch.allclose(gaussian_kl(mp, sp, mq, sq), kl_divergence(Normal(mp, sp), Normal(mq, sq)).sum(), atol=1e-5)


def test_local_reparameterisation_noise_is_per_row_unless_shared():
    x = torch.ones(4, 3)  # four identical rows
    per_row, shared = _bnn(), _bnn(shared_eps=True)
    out = per_row.predict(per_row.params(), x, per_row.sample_noise(4))
    assert out.shape == (3, 4, 2) and not torch.allclose(out[0, 0], out[0, 1])
    out = shared.predict(shared.params(), x, shared.sample_noise(4))
    assert torch.allclose(out[0, 0], out[0, 1])  # MIME's quirk: one noise draw for the whole batch


def test_elbo_decreases_on_fixed_dataset():
    bnn = _bnn()
    x, y = _data()
    opt = torch.optim.Adam(bnn.parameters(), lr=1e-2)
    losses = []
    for _ in range(100):
        loss = bnn.elbo_loss(bnn.params(), x, y, bnn.sample_noise(len(x)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-10:]) / 10 < 0.3 * sum(losses[:10]) / 10
    assert float(bnn.mse(bnn.params(), x, y).detach()) < 0.1


@pytest.mark.parametrize("rule", ["sgd", "adam"])
def test_vectorised_info_gain_equals_per_transition_loop(rule):
    bnn = _bnn()
    x, y = _data(12, seed=1)
    noise = bnn.sample_noise(1, (12,))
    fast = info_gain(bnn, bnn.params(), x, y, noise, lr=1e-3, rule=rule)
    slow = info_gain_loop(bnn, bnn.params(), x, y, noise, lr=1e-3, rule=rule)
    assert torch.allclose(fast, slow, rtol=1e-4, atol=1e-7)
    assert (fast > 0).all()


def _trained_bnn():
    bnn = _bnn()
    x, y = _data(256)
    opt = torch.optim.Adam(bnn.parameters(), lr=1e-2)
    for _ in range(200):
        loss = bnn.elbo_loss(bnn.params(), x, y, bnn.sample_noise(len(x)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return bnn


@pytest.mark.parametrize("method", ["step", "second_order"])
def test_info_gain_nonnegative_and_larger_for_novel_transitions(method):
    bnn = _trained_bnn()
    familiar_x, familiar_y = _data(64, seed=7)
    novel_x, novel_y = _data(64, seed=8, shift=2.5)
    novel_y = novel_y + 1.0
    noise = bnn.sample_noise(1, (64,))
    fam = info_gain(bnn, bnn.params(), familiar_x, familiar_y, noise, lr=1e-3, rule="sgd", method=method)
    nov = info_gain(bnn, bnn.params(), novel_x, novel_y, noise, lr=1e-3, rule="sgd", method=method)
    assert (fam >= 0).all() and (nov >= 0).all()
    assert float(nov.mean()) > 5 * float(fam.mean())


def test_bonus_normalisers():
    bonus = torch.tensor([[[1.0, 2.0], [3.0, 6.0]]])
    mask = torch.ones(1, 2, 2)
    out = BonusNormaliser("batch")(bonus, mask)
    assert abs(float(out.mean())) < 1e-6
    med = BonusNormaliser("median", window=2)
    assert torch.allclose(med(bonus, mask), bonus / 2.0)  # torch's median of 1,2,3,6 is the lower middle: 2
    assert torch.allclose(med(2 * bonus, mask), 2 * bonus / 3.0)  # running mean of medians 2 and 4
    state = med.state_dict()
    other = BonusNormaliser("median", window=2)
    other.load_state_dict(state)
    assert other.medians == med.medians


def _tasks(m=3, n=40, seed=0):
    x, y, w = [], [], []
    for k in range(m):
        xi, yi = _data(n, seed=seed + k)
        x.append(xi)
        y.append(yi + 0.3 * k)
        w.append(torch.ones(n))
    return torch.stack(x), torch.stack(y), torch.stack(w)


def test_dynamics_meta_update_lowers_the_adapted_elbo():
    dyn = VIMEDynamics(_bnn(), inner_lr=1e-3, meta_lr=1e-2)
    train, valid = _tasks(), _tasks(seed=10)
    first = dyn.meta_update(train, valid, num_updates=1)["elbo_loss"]
    last = dyn.meta_update(train, valid, num_updates=60)["elbo_loss"]
    assert last < 0.5 * first
    adapted = dyn.adapt(*train)
    assert all(p.shape[0] == 3 for p in adapted.values())  # one posterior per task
    bonus = dyn.bonus({k: v.detach() for k, v in adapted.items()}, valid[0], valid[1], batched=True)
    assert bonus.shape == (3, 40) and (bonus >= 0).all()


def test_last_chunk_quirk_and_mime_optimiser_flags():
    dyn = VIMEDynamics(_bnn(), last_chunk_only=True, chunk=16)
    w = dyn._valid_weight(torch.ones(2, 40))
    assert torch.equal(w[0], torch.cat([torch.zeros(32), torch.ones(8)]))  # only the last chunk (32..39)
    assert torch.equal(VIMEDynamics(_bnn())._valid_weight(torch.ones(2, 40)), torch.ones(2, 40))
    mime = VIMEDynamics(_bnn(), meta_lr=1e-4, mime_optimiser=True)
    mime.meta_update(_tasks(), _tasks(seed=5))
    assert mime.optimiser.param_groups[0]["lr"] == pytest.approx(1e-4 * 9)  # lr * num_tasks^2, a new Adam
