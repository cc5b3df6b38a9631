import pytest
import torch

from models.aggregators import AGG_TYPES, make_aggregator, segmented_scan
from models.history_encoder import ENC_TYPES, HistoryEncoder

torch.set_num_threads(1)

T, B, D = 11, 3, 6


def _loop(agg, x, state, done):
    outs = []
    for t in range(x.shape[0]):
        if done is not None:
            state = agg.reset(state, done[t])
        o, state = agg.step(x[t], state)
        outs.append(o)
    return torch.stack(outs), state


@pytest.mark.parametrize("st", [False, True])
@pytest.mark.parametrize("agg_type", AGG_TYPES)
def test_sequence_forward_equals_steps_with_resets(agg_type, st):
    torch.manual_seed(0)
    agg = make_aggregator(agg_type, D, st_estimator=st)
    x = torch.randn(T, B, D)
    done = torch.rand(T, B) < 0.3
    done[4, 0] = True
    s0 = agg.step(torch.randn(B, D), agg.initial_state(B))[1]  # non-trivial carried-in state
    out, s = agg(x, s0, done)
    ref_out, ref_s = _loop(agg, x, s0, done)
    assert out.shape == (T, B, agg.out_dim) and s.shape == (B, agg.state_size)
    assert torch.allclose(out, ref_out, atol=1e-5) and torch.allclose(s, ref_s, atol=1e-5)
    out2, s2 = agg(x, s0, None)
    ref_out2, ref_s2 = _loop(agg, x, s0, None)
    assert torch.allclose(out2, ref_out2, atol=1e-5) and torch.allclose(s2, ref_s2, atol=1e-5)


@pytest.mark.parametrize("agg_type", AGG_TYPES)
def test_aggregators_are_permutation_invariant(agg_type):
    torch.manual_seed(1)
    agg = make_aggregator(agg_type, D)
    x = torch.randn(T, B, D)
    p = torch.randperm(T)
    s = agg.initial_state(B)
    assert torch.allclose(agg(x, s)[0][-1], agg(x[p], s)[0][-1], atol=1e-5)


def test_aggregator_values():
    x = torch.tensor([[1.0, -2.0], [3.0, -4.0], [-1.0, 0.5]]).unsqueeze(1)  # [3, 1, 2]
    for name, expect in [("sum", [3.0, -5.5]), ("max", [3.0, 0.5]), ("avg", [1.0, -5.5 / 3])]:
        agg = make_aggregator(name, 2)
        out, _ = agg(x, agg.initial_state(1))
        assert torch.allclose(out[-1, 0], torch.tensor(expect)), name
    agg = make_aggregator("max", 2, max_init_low=True)
    assert torch.allclose(agg(-x - 10, agg.initial_state(1))[0][-1, 0], torch.tensor([-9.0, -6.0]))
    # gauss: prior N(0, 1) as initial output; two equal observations with precision p give
    # mu * 2p / (1 + 2p)
    agg = make_aggregator("gauss", 2)
    assert torch.allclose(agg.output(agg.initial_state(1)), torch.zeros(1, 2))
    raw = torch.log(torch.expm1(torch.tensor(1.0)))  # softplus(raw) = 1
    obs = torch.tensor([[[2.0, raw]], [[2.0, raw]]])
    out, _ = agg(obs, agg.initial_state(1))
    assert out[-1, 0, 0].item() == pytest.approx(2.0 * 2 / 3, rel=1e-4)
    assert out[-1, 0, 1].item() == pytest.approx(-torch.log(torch.tensor(3.0)).item(), rel=1e-4)
    # softmax with a tiny temperature -> max; with a huge one -> mean
    agg = make_aggregator("softmax", 2, softmax_temp=1e-3, learn_temps=False)
    assert torch.allclose(agg(x, agg.initial_state(1))[0][-1, 0], torch.tensor([3.0, 0.5]), atol=1e-4)
    agg = make_aggregator("softmax", 2, softmax_temp=1e4)
    assert torch.allclose(agg(x, agg.initial_state(1))[0][-1, 0], torch.tensor([1.0, -5.5 / 3]), atol=1e-3)


def test_straight_through_max_gradients():
    torch.manual_seed(2)
    x = torch.randn(T, 1, D, requires_grad=True)
    for st in (False, True):
        agg = make_aggregator("max", D, st_estimator=st)
        out, _ = agg(x, agg.initial_state(1))
        (g,) = torch.autograd.grad(out[-1].sum(), x)
        if st:  # gradient reaches every step with magnitude 1 (AMRL)
            assert torch.allclose(g, torch.ones_like(g))
        else:  # only through the argmax (or the initial 0)
            assert g.sum(0).le(1.0).all() and g.sum() <= D
    agg = make_aggregator("avg", D, st_estimator=True)
    out, _ = agg(x, agg.initial_state(1))
    (g,) = torch.autograd.grad(out[-1].sum(), x)
    assert torch.allclose(g, torch.ones_like(g))


def test_segmented_scan_sum():
    x = torch.arange(1.0, 9.0).reshape(8, 1, 1)
    flags = torch.zeros(8, 1, dtype=torch.bool)
    flags[0] = flags[3] = True
    (out,) = segmented_scan((x,), flags, lambda a, b: (a[0] + b[0],))
    assert out.flatten().tolist() == [1, 3, 6, 4, 9, 15, 22, 30]


def _inputs(T=T, B=B, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(T, B, 2, generator=g), torch.randn(T, B, 3, generator=g),
            torch.randn(T, B, 1, generator=g), torch.randn(T, B, 3, generator=g))


def _enc(**kw):
    kw.setdefault("hidden_size", 16)
    return HistoryEncoder(2, 3, 4, full_transitions=True, **kw)


def test_gru_is_not_permutation_invariant_but_max_norrn_is():
    torch.manual_seed(3)
    a, s, r, ps = _inputs()
    p = torch.randperm(T)
    for kw, invariant in [({"enc_type": "gru"}, False), ({"enc_type": "none", "agg_type": "max"}, True),
                          ({"enc_type": "none", "agg_type": "avg"}, True),
                          ({"enc_type": "gru", "skip": "split", "agg_type": "max"}, False)]:
        enc = _enc(**kw)
        m1 = enc(a, s, r, ps)[0][-1]
        m2 = enc(a[p], s[p], r[p], ps[p])[0][-1]
        assert torch.allclose(m1, m2, atol=1e-5) == invariant, kw


def test_splagger_split_shapes():
    torch.manual_seed(4)
    enc = _enc(enc_type="gru", skip="split", agg_type="max", hidden_size=16)
    assert enc.skip_dim == 8 and enc.agg.in_dim == 8 and enc.agg.out_dim == 8
    assert enc.state_size == 16 + 8 == enc.enc_state_size + enc.agg_state_size
    a, s, r, ps = _inputs()
    skip, agg = enc.features(a, s, r, ps)
    assert skip.shape == (T, B, 8) and agg.shape == (T, B, 8)
    # the aggregated half is a running max over time
    assert (agg[1:] >= agg[:-1] - 1e-7).all()
    mean, logvar, h = enc(a, s, r, ps, None, return_prior=True)
    assert mean.shape == (T + 1, B, 4) and logvar.shape == (T + 1, B, 4) and h.shape == (B, 24)
    # layers after the encoder: the split is applied to their output
    enc = _enc(enc_type="gru", skip="split", agg_type="avg", layers_after_enc=[10], layers_after_agg=[12])
    assert enc.skip_dim == 5 and enc.agg.in_dim == 5
    assert enc(a, s, r, ps)[0].shape == (T, B, 4)
    with pytest.raises(ValueError):
        _enc(enc_type="gru", skip="split", agg_type="max", hidden_size=15)


CONFIGS = [{"enc_type": e} for e in ENC_TYPES] + [
    {"enc_type": "gru", "skip": "split", "agg_type": "max"}, {"enc_type": "none", "agg_type": "gauss"},
    {"enc_type": "lstm", "agg_type": "softmax", "skip": "split"}, {"enc_type": "transformer", "agg_type": "am"},
    {"enc_type": "none", "agg_type": "weighted_avg", "learn_init_state": True},
]


@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_encoder_sequence_equals_steps_and_chunks(kw):
    torch.manual_seed(5)
    enc = _enc(transformer_mem=32, **kw)
    a, s, r, ps = _inputs()
    done = torch.zeros(T, B, dtype=torch.bool)
    done[3, 0] = done[7, 1] = done[5, 2] = True
    mean, _logvar, h = enc(a, s, r, ps, None, return_prior=False, done_mask=done)
    hh = enc.initial_hidden(B)
    ms = []
    for t in range(T):
        hh = enc.reset_hidden(hh, done[t])
        m, _lv, hh = enc(a[t], s[t], r[t], ps[t], hh)
        assert m.shape == (B, 4)
        ms.append(m)
    assert torch.allclose(mean, torch.stack(ms), atol=1e-5)
    assert torch.allclose(h, hh, atol=1e-5)
    # chunked processing with the carried hidden state; prior at index 0 of each chunk
    m_all, _, h_all = enc(a, s, r, ps, None, return_prior=True)
    m1, _, h1 = enc(a[:4], s[:4], r[:4], ps[:4], None, return_prior=True)
    m2, _, h2 = enc(a[4:], s[4:], r[4:], ps[4:], h1, return_prior=True)
    assert torch.allclose(m_all[:5], m1, atol=1e-5) and torch.allclose(m_all[4:], m2, atol=1e-5)
    assert torch.allclose(h_all, h2, atol=1e-5)
    pm = enc.prior(enc.initial_hidden(B)).mean
    assert torch.allclose(m_all[0], pm) and pm.shape == (B, 4)


def test_reset_hidden_resets_both_parts():
    torch.manual_seed(6)
    enc = _enc(enc_type="gru", skip="split", agg_type="avg")
    a, s, r, ps = _inputs()
    _, _, h = enc(a, s, r, ps)
    init = enc.initial_hidden(B)
    assert not torch.allclose(h, init)
    mask = torch.tensor([True, False, True])
    h2 = enc.reset_hidden(h, mask)
    assert torch.equal(h2[mask], init[mask]) and torch.equal(h2[~mask], h[~mask])


def test_gauss_encoder_prior_is_standard_normal():
    enc = _enc(enc_type="none", agg_type="gauss")
    m, lv, _ = enc.prior(2)
    assert torch.allclose(m, torch.zeros(2, 4)) and torch.allclose(lv, torch.zeros(2, 4))


def test_lstm_invariant_init_is_nearly_permutation_invariant():
    torch.manual_seed(7)
    enc = _enc(enc_type="lstm", invariant_init=True)
    a, s, r, ps = _inputs()
    p = torch.randperm(T)
    m1 = enc(a, s, r, ps)[0][-1]
    m2 = enc(a[p], s[p], r[p], ps[p])[0][-1]
    assert torch.allclose(m1, m2, atol=1e-3)
    assert not torch.allclose(_enc(enc_type="lstm")(a, s, r, ps)[0][-1], _enc(enc_type="lstm")(a[p], s[p], r[p], ps[p])[0][-1])


def test_learned_initial_state_gets_gradients():
    enc = _enc(enc_type="gru", agg_type="max", learn_init_state=True)
    a, s, r, ps = _inputs()
    m, _lv, _ = enc(a, s, r, ps, None, return_prior=True)
    m.sum().backward()
    assert enc.enc_init.grad is not None and enc.enc_init.grad.abs().sum() > 0
    assert enc.agg.init_state_param.grad is not None


@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_rnnencoder_compatible_api(kw):
    """step / forward_with_resets / return_all_hidden / detach_every agree with each other."""
    torch.manual_seed(8)
    enc = _enc(transformer_mem=32, **kw)
    a, s, r, ps = _inputs()
    dones = torch.zeros(T, B, dtype=torch.bool)
    dones[2, 0] = dones[6, 1] = dones[T - 1, 2] = True
    h0 = enc.initial_hidden(B)
    post = enc.forward_with_resets(a, s, r, h0, dones, prev_states=ps)
    assert post.mean.shape == (T + 1, B, 4) and post.hidden.shape == (T + 1, B, enc.hidden_size)
    h, means, hiddens = h0, [enc.prior(h0).mean], [h0]
    for t in range(T):
        p = enc.step(a[t], s[t], r[t], h, dones[t], prev_state=ps[t])
        h = p.hidden
        means.append(p.mean)
        hiddens.append(h)
    assert torch.allclose(post.mean, torch.stack(means), atol=1e-5)
    assert torch.allclose(post.hidden, torch.stack(hiddens), atol=1e-5)
    # all hidden states of a plain forward: re-encoding from any of them continues exactly
    full = enc(a, s, r, ps, None, return_prior=True, return_all_hidden=True)
    assert full.hidden.shape == (T + 1, B, enc.state_size)
    cont = enc(a[5:], s[5:], r[5:], ps[5:], full.hidden[5], return_prior=True)
    assert torch.allclose(cont.mean, full.mean[5:], atol=1e-5)
    tb = enc(a, s, r, ps, None, return_prior=True, return_all_hidden=True, detach_every=4)
    assert torch.allclose(tb.mean, full.mean, atol=1e-5) and torch.allclose(tb.hidden, full.hidden, atol=1e-5)


def test_analyse_encoders_tool_smoke(tmp_path):
    from tools.analyse_encoders import main

    res = main(["--out", str(tmp_path), "--steps", "8", "--batch", "2", "--hidden", "8", "--latent_dim", "3",
                "--num_perms", "2", "--seeds", "1"])
    assert (tmp_path / "grad_decay.png").exists() and (tmp_path / "perm_sensitivity.png").exists()
    assert res["max-noRNN"]["perm_diff_mean"] < 1e-5 and res["avg"]["perm_diff_mean"] < 1e-5
    assert res["gru"]["perm_diff_mean"] > 1e-4 and len(res["gru"]["grad_norm"]) == 8
