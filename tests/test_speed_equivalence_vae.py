"""The fused all-pairs reconstruction error (``pairs_mse``, the VAE loss's training path) equals
the materialised computation it replaced, in value and in every gradient.

The reference is the previous code path, still in the tree: the decoders' ``pairs`` (all
[K, D, B, out] predictions) and ``VAE._elbo_terms(batch)`` (per-posterior terms) reduced by
``_reduce_elbo``. The two sum the same float32 numbers in another order, so they agree to
rounding (checked with a relative tolerance), not bit for bit.
"""
import zlib
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import models.decoder as decoder_mod
from config.loader import resolve
from models.decoder import RewardDecoder, StateDecoder
from tests.conftest import tiny
from utils.spec import RunSpec
import vae as vae_mod
from vae import VAE

RTOL = 2e-5


def _close(got, want, rtol=RTOL, what=""):
    got, want = got.detach(), want.detach()
    scale = max(float(want.abs().max()), 1e-6)
    err = float((got - want).abs().max())
    assert err <= rtol * scale, f"{what}: max |diff| {err:.3g} vs scale {scale:.3g}"


def _weights(K, D, B, g, kind):
    """[K, D, B] pair weights as the ELBO builds them: all pairs, padded trajectories
    (varying lengths), decode-only-past (triangular), or random with zeros."""
    if kind == "all":
        return torch.rand(K, 1, B, generator=g).expand(K, D, B).contiguous()
    if kind == "padded":
        lengths = torch.randint(1, D + 1, (B,), generator=g)
        lengths[0] = D
        e_ok = torch.arange(K)[:, None] <= lengths
        d_ok = torch.arange(D)[:, None] < lengths
        return (e_ok[:, None] & d_ok[None]).float() * torch.rand(K, 1, B, generator=g)
    if kind == "past":
        return (torch.arange(D)[None, :, None] < torch.arange(K)[:, None, None]).float().expand(K, D, B) * 0.5
    return torch.rand(K, D, B, generator=g) * (torch.rand(K, D, B, generator=g) < 0.3)


def _reference(dec, latent, xs, target, weight):
    pred = dec.pairs(latent, *xs)                                  # [K, D, B, out], the old path
    return ((pred - target[None]).pow(2).mean(-1) * weight).sum()


@pytest.mark.parametrize("kind", ["all", "padded", "past", "random"])
@pytest.mark.parametrize("layers", [[64, 32], [16], [8, 8, 8]])
@pytest.mark.parametrize("decoder", ["reward", "state"])
@pytest.mark.parametrize("rows", [7, 100, 1 << 20])
def test_pairs_mse_equals_materialised_pairs(kind, layers, decoder, rows, monkeypatch):
    """Value and gradients (latent, every input, every parameter) on random inputs, for chunks
    smaller than one posterior (split steps), of several posteriors, and one chunk."""
    monkeypatch.setitem(decoder_mod.PAIR_CHUNK_ROWS, "cpu", rows)
    g = torch.Generator().manual_seed(zlib.crc32(repr((kind, layers, decoder, rows)).encode()))
    torch.manual_seed(int(torch.randint(1000, (1,), generator=g)))
    K, D, B, z = 9, 8, 3, 4
    if decoder == "reward":
        dec = RewardDecoder(z, 3, 2, layers, 6, 5)
        xs = [torch.randn(D, B, 3, generator=g), torch.randn(D, B, 3, generator=g), torch.randn(D, B, 2, generator=g)]
        target = torch.randn(D, B, 1, generator=g)
    else:
        dec = StateDecoder(z, 3, 2, layers, 6, 5)
        xs = [torch.randn(D, B, 3, generator=g), torch.randn(D, B, 2, generator=g)]
        target = torch.randn(D, B, 3, generator=g)
    latent = torch.randn(K, B, z, generator=g)
    weight = _weights(K, D, B, g, kind)
    leaves = [latent.requires_grad_(), *(x.requires_grad_() for x in xs), *dec.parameters()]
    want = _reference(dec, latent, xs, target, weight)
    want_grads = torch.autograd.grad(want, leaves)
    got = dec.pairs_mse(latent, *xs, target, weight)
    got_grads = torch.autograd.grad(got, leaves)
    _close(got, want, what="value")
    names = ["latent"] + [f"input{i}" for i in range(len(xs))] + [n for n, _ in dec.named_parameters()]
    for name, a, b in zip(names, got_grads, want_grads):
        _close(a, b, what=name)
    with torch.no_grad():  # the forward-only path
        _close(dec.pairs_mse(latent, *xs, target, weight), want, what="no-grad value")


def test_pairs_mse_scales_its_gradients_by_the_upstream_gradient():
    """The gradients are computed in the forward pass and scaled in backward: a loss that uses
    the sum with a coefficient (and twice) gets the matching gradients."""
    g = torch.Generator().manual_seed(3)
    dec = RewardDecoder(2, 3, 2, [8], 4, 4)
    lat = torch.randn(5, 2, 2, generator=g, requires_grad=True)
    xs = [torch.randn(4, 2, 3, generator=g), torch.randn(4, 2, 3, generator=g), torch.randn(4, 2, 2, generator=g)]
    tgt, w = torch.randn(4, 2, 1, generator=g), torch.rand(5, 4, 2, generator=g)
    s = dec.pairs_mse(lat, *xs, tgt, w)
    (g_fused,) = torch.autograd.grad(-0.7 * s + 2.0 * s, lat)
    (g_ref,) = torch.autograd.grad(1.3 * _reference(dec, lat, xs, tgt, w), lat)
    _close(g_fused, g_ref)


def test_pairs_mse_skips_nothing_it_needs_at_full_pointrobot_width():
    """A pointrobot-sized problem (one chunk per posterior) against the materialised path."""
    g = torch.Generator().manual_seed(4)
    torch.manual_seed(4)
    K, D, B = 61, 60, 5
    dec = RewardDecoder(5, 2, 2, [64, 32], 32, 16)
    lat = torch.randn(K, B, 5, generator=g, requires_grad=True)
    xs = [torch.randn(D, B, 2, generator=g), torch.randn(D, B, 2, generator=g), torch.randn(D, B, 2, generator=g)]
    tgt, w = -torch.rand(D, B, 1, generator=g), _weights(K, D, B, g, "padded")
    leaves = [lat, *dec.parameters()]
    want = torch.autograd.grad(_reference(dec, lat, xs, tgt, w), leaves)
    got = torch.autograd.grad(dec.pairs_mse(lat, *xs, tgt, w), leaves)
    for a, b in zip(got, want):
        _close(a, b)


# ---- the VAE loss: fused terms == the per-posterior terms reduced as before ----------------
def _vae(**extra):
    cfg = resolve("pointrobot_varibad", values=tiny(**extra))
    spec = RunSpec(obs_dim=3, action_dim=2, num_actions=2, discrete=False, task_dim=2, belief_dim=0,
                   num_tasks=None, episode_len=4, horizon=8, num_updates=1)
    return VAE(spec, cfg.section("vae", "encoder", "decoder"), 4, "cpu", seed=0)


def _batch(B=3, L=8, lengths=None):
    g = torch.Generator().manual_seed(1)
    return SimpleNamespace(prev_obs=torch.randn(L, B, 3, generator=g), actions=torch.randn(L, B, 2, generator=g),
                           rewards=torch.randn(L, B, 1, generator=g), next_obs=torch.randn(L, B, 3, generator=g),
                           tasks=torch.randn(B, 2, generator=g),
                           lengths=torch.full((B,), L) if lengths is None else torch.tensor(lengths))


def _reference_loss(vae, batch):
    """The loss as computed before the fused path: per-posterior terms, then _reduce_elbo."""
    cfg = vae.cfg
    terms, e_ok, kl, ok = vae._elbo_terms(batch)
    coeff = {"reward_reconstr_err": cfg.rew_loss_coeff, "state_reconstr_err": cfg.state_loss_coeff,
             "task_reconstr_err": cfg.task_loss_coeff}
    stats = {name: vae._reduce_elbo(err, e_ok) for name, err in terms.items()}
    total = sum(coeff[name] * val for name, val in stats.items())
    if kl is not None:
        stats["kl"] = vae._reduce_elbo(kl, ok)
        total = total + cfg.kl_weight * stats["kl"]
    stats["sum"] = total
    return total, stats


CONFIGS = {
    "default": {},
    "avg_decodes": {"vae_avg_reconstruction_terms": True},
    "avg_elbos": {"vae_avg_elbo_terms": True},
    "avg_both_state_task": {"vae_avg_reconstruction_terms": True, "vae_avg_elbo_terms": True, "decode_state": True,
                            "decode_task": True, "state_loss_coeff": 0.3, "rew_loss_coeff": 2.0},
    "decode_only_past": {"decode_only_past": True, "decode_state": True},
    "subsampled": {"vae_subsample_elbos": 5, "vae_subsample_decodes": 4, "decode_state": True},
    "normalised_targets": {"normalise_rew_targets": True, "decoder_max_grad_norm": 1.0},
}


@pytest.mark.parametrize("lengths", [None, [8, 3, 5]])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_vae_loss_equals_reduced_per_posterior_terms(name, lengths):
    vae = _vae(**CONFIGS[name])
    batch = _batch(lengths=lengths)
    params = vae.parameters()
    gen, noise = vae.generator.get_state(), vae.noise.get_state()
    want, want_stats = _reference_loss(vae, batch)
    want_grads = torch.autograd.grad(want, params, allow_unused=True)
    vae.generator.set_state(gen)
    vae.noise.set_state(noise)
    got, got_stats = vae.loss(batch)
    got_grads = torch.autograd.grad(got, params, allow_unused=True)
    assert sorted(got_stats) == sorted(want_stats)
    for key in want_stats:
        _close(got_stats[key], want_stats[key].detach(), what=key)
    for i, (a, b) in enumerate(zip(got_grads, want_grads)):
        assert (a is None) == (b is None), i
        if a is not None:
            _close(a, b, what=f"param {i} {tuple(a.shape)}")
    vae.generator.set_state(gen)
    vae.noise.set_state(noise)
    with torch.no_grad():  # frozen VAE / plots: the forward-only path
        _, frozen = vae.loss(batch)
    for key in want_stats:
        _close(frozen[key], want_stats[key].detach(), what=f"no-grad {key}")


def test_training_steps_stay_close_to_the_materialised_path():
    """Several optimiser steps with the fused loss vs the old one from the same start: the
    parameters agree to float32 rounding (no drift beyond reassociation)."""
    a, b = _vae(decode_state=True), _vae(decode_state=True)
    b.encoder.load_state_dict(a.encoder.state_dict())
    for k in ("reward_decoder", "state_decoder"):
        getattr(b, k).load_state_dict(getattr(a, k).state_dict())
    batch = _batch(lengths=[8, 5, 7])
    for _ in range(5):
        for vae, fn in ((a, lambda v: v.loss(batch)[0]), (b, lambda v: _reference_loss(v, batch)[0])):
            loss = fn(vae)
            vae.optimiser.zero_grad()
            loss.backward()
            vae.optimiser.step()
    for p, q in zip(a.parameters(), b.parameters()):
        _close(p.detach(), q.detach(), rtol=1e-4)


@pytest.mark.parametrize("name", ["default", "avg_both_state_task", "decode_only_past"])
def test_per_posterior_terms_without_gradients_in_blocks_equal_the_whole(name, monkeypatch):
    """Plots (per_elbo_errors) decode blocks of posteriors without gradients: the same
    per-posterior terms as the whole [K, D, B] computation."""
    vae = _vae(**CONFIGS[name])
    batch = _batch(lengths=[8, 3, 5])
    whole, _, _, _ = vae._elbo_terms(batch, subsample=False, avg_decodes=True, use_mean=True)
    monkeypatch.setattr(vae_mod, "PLOT_CHUNK_ROWS", 20)  # one posterior per block
    with torch.no_grad():
        blocks, _, _, _ = vae._elbo_terms(batch, subsample=False, avg_decodes=True, use_mean=True)
    assert sorted(whole) == sorted(blocks)
    for key in whole:
        assert blocks[key].shape == whole[key].shape
        _close(blocks[key], whole[key], rtol=1e-6, what=key)


def test_pairs_mse_two_groups_are_deterministic_and_each_chunk_counted_once(monkeypatch):
    """On a CPU the chunks are dealt to two groups (the second summed on a helper thread):
    repeated calls give the same bits whatever the scheduling, and the sum equals summing the
    groups by hand in the documented order (even chunks, then odd chunks)."""
    monkeypatch.setitem(decoder_mod.PAIR_CHUNK_ROWS, "cpu", 40)
    g = torch.Generator().manual_seed(5)
    K, D, B = 12, 10, 2
    dec = RewardDecoder(3, 2, 2, [16, 8], 4, 4)
    lat = torch.randn(K, B, 3, generator=g, requires_grad=True)
    xs = [torch.randn(D, B, 2, generator=g), torch.randn(D, B, 2, generator=g), torch.randn(D, B, 2, generator=g)]
    tgt, w = torch.randn(D, B, 1, generator=g), torch.rand(K, D, B, generator=g)
    runs = []
    for _ in range(5):
        s = dec.pairs_mse(lat, *xs, tgt, w)
        runs.append((s.detach(), *torch.autograd.grad(s, [lat, *dec.parameters()])))
    for other in runs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(runs[0], other))
    # by hand: the two groups' sums, added
    a = F.linear(lat, dec.net[0].weight[:, :3]).detach()
    c = F.linear(dec._inputs(*xs), dec.net[0].weight[:, 3:], dec.net[0].bias).detach()
    tail = decoder_mod._tail(dec.net)
    ws, bs = [m.weight.detach() for m in tail], [m.bias.detach() for m in tail]
    chunks = list(decoder_mod._chunks(w, 40))
    assert len(chunks) > 4
    t0, _ = decoder_mod._pairs_mse_group(chunks[0::2], 40, a, c, tgt, w, ws, bs, need_grad=False)
    t1, _ = decoder_mod._pairs_mse_group(chunks[1::2], 40, a, c, tgt, w, ws, bs, need_grad=False)
    assert torch.equal(runs[0][0], (t0 + t1) / 1)


def test_pairs_mse_on_the_helper_or_not_gives_the_same_bits(monkeypatch):
    """``pairs_on_helper(False)`` only moves the second group onto the calling thread."""
    monkeypatch.setitem(decoder_mod.PAIR_CHUNK_ROWS, "cpu", 40)
    g = torch.Generator().manual_seed(6)
    K, D, B = 12, 10, 2
    dec = StateDecoder(3, 2, 2, [16], 4, 4)
    lat = torch.randn(K, B, 3, generator=g, requires_grad=True)
    xs = [torch.randn(D, B, 2, generator=g), torch.randn(D, B, 2, generator=g)]
    tgt, w = torch.randn(D, B, 2, generator=g), torch.rand(K, D, B, generator=g)
    got = {}
    for on in (True, False):
        with decoder_mod.pairs_on_helper(on):
            s = dec.pairs_mse(lat, *xs, tgt, w)
            got[on] = (s.detach(), *torch.autograd.grad(s, [lat, *dec.parameters()]))
    assert all(torch.equal(a, b) for a, b in zip(got[True], got[False]))
    assert getattr(decoder_mod._LOCAL, "helper", True) is True  # restored after the block
