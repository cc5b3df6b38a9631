import math

import pytest
import torch
import torch.nn.functional as F

from models.common import normc_
from models.hypernet import INITS, HyperActorCritic
from models.policy import MLPActorCritic

torch.set_num_threads(1)

TANH_GAIN = 5.0 / 3.0


def _explicit(model: HyperActorCritic, x, cond):
    """Loop over samples and layers with plain F.linear (reference implementation)."""
    outs_a, outs_v = [], []
    for i in range(x.shape[0]):
        h = cond[i:i + 1]
        for layer in model.trunk:
            h = torch.tanh(layer(h))
        res = []
        for net in (model.actor, model.critic):
            z = x[i:i + 1]
            n = len(net.generated)
            for j, gen in enumerate(net.generated):
                if gen:
                    W = net.head_w[j](h).reshape(net.sizes[j + 1], net.sizes[j])
                    b = net.head_b[j](h).reshape(-1)
                    z = F.linear(z, W, b)
                else:
                    z = net.plain[j](z)
                if j < n - 1:
                    z = torch.tanh(z)
            res.append(z)
        outs_a.append(res[0])
        outs_v.append(res[1])
    return torch.cat(outs_a), torch.cat(outs_v)


def test_bias_hyperinit_output_independent_of_cond():
    torch.manual_seed(0)
    m = HyperActorCritic(6, 5, [32, 32], 4, hypernet_layers=[16])
    x = torch.randn(8, 6)
    a1, v1 = m(x, torch.randn(8, 5))
    a2, v2 = m(x, 10 * torch.randn(8, 5))
    assert torch.allclose(a1, a2, atol=1e-6) and torch.allclose(v1, v2, atol=1e-6)
    # ... but the conditioning can be learned: the weight heads get gradients
    a1.pow(2).sum().add(v1.pow(2).sum()).backward()
    assert m.actor.head_w[0].weight.grad.abs().sum() > 0


def test_bias_hyperinit_generated_weights_are_standard_init():
    torch.manual_seed(1)
    m = HyperActorCritic(64, 7, [128, 128], 3, actor_head_gain=0.01)
    pa, pc = m.generate(torch.randn(5, 7))
    for params, head_gain in ((pa, 0.01), (pc, 1.0)):
        gains = [TANH_GAIN, TANH_GAIN, head_gain]
        for (W, b), g in zip(params, gains):
            # identical for every sample, zero biases, normc rows with norm = gain
            assert torch.allclose(W, W[:1].expand_as(W))
            assert torch.count_nonzero(b) == 0
            assert torch.allclose(W.norm(dim=2), torch.full_like(W.norm(dim=2), g), rtol=1e-4)
            d_in = W.shape[2]
            assert abs(W[0].mean().item()) < 3 * g / math.sqrt(W[0].numel())
            assert W[0].std().item() == pytest.approx(g / math.sqrt(d_in), rel=0.1)


def test_bias_hyperinit_matches_mlp_statistics():
    torch.manual_seed(2)
    hyper = HyperActorCritic(32, 4, [64, 64], 2)
    mlp = MLPActorCritic(32, 0, [64, 64], 2)
    W_h = hyper.generate(torch.randn(1, 4))[0][0][0][0]
    W_m = mlp.actor[0].weight
    assert W_h.shape == W_m.shape
    assert torch.allclose(W_h.norm(dim=1), W_m.norm(dim=1), rtol=1e-4)


def test_hfi_output_variance_matches_formula():
    torch.manual_seed(3)
    d_h, d_in, d_out, B = 64, 64, 64, 4000
    m = HyperActorCritic(d_in, d_h, [d_out], 2, init="hfi")
    x, cond = torch.randn(B, d_in), torch.randn(B, d_h)
    with torch.no_grad():
        pre_a, pre_c = m.preactivations(x, cond)
        pa, _ = m.generate(cond)
    # Var(W_ij) = gain^2 / (2 d_in), Var(b_i) = gain^2 / 2 -> Var(pre-activation) = gain^2
    W, b = pa[0]
    assert W.var().item() == pytest.approx(TANH_GAIN ** 2 / (2 * d_in), rel=0.1)
    assert b.var().item() == pytest.approx(TANH_GAIN ** 2 / 2, rel=0.1)
    assert pre_a[0].var().item() == pytest.approx(TANH_GAIN ** 2, rel=0.1)
    assert pre_c[0].var().item() == pytest.approx(TANH_GAIN ** 2, rel=0.1)


@pytest.mark.parametrize("init", ["naive_normc", "hfi", "weight_hyperinit", "naive_kaiming"])
def test_per_sample_weights_equal_explicit_loop(init):
    torch.manual_seed(4)
    m = HyperActorCritic(5, 3, [7, 6], 4, hypernet_layers=[8], generated_layers=[True, False, True], init=init)
    x, cond = torch.randn(3, 5), torch.randn(3, 3)
    a, v = m(x, cond)
    ea, ev = _explicit(m, x, cond)
    assert torch.allclose(a, ea, atol=1e-5) and torch.allclose(v, ev, atol=1e-5)
    assert not torch.allclose(a[0], a[1])


def test_weight_hyperinit_columns_are_standard_inits():
    torch.manual_seed(5)
    m = HyperActorCritic(16, 6, [32], 2, init="weight_hyperinit")
    onehot = torch.eye(6)
    W = m.generate(onehot)[0][0][0]  # [6, 32, 16]
    assert torch.allclose(W.norm(dim=2), torch.full((6, 32), TANH_GAIN), rtol=1e-4)
    assert not torch.allclose(W[0], W[1])


@pytest.mark.parametrize("init", INITS)
def test_all_inits_shapes_and_leading_dims(init):
    m = HyperActorCritic(4, 3, [8, 8], 2, init=init, hypernet_layers=[5])
    a, v = m(torch.randn(2, 7, 4), torch.randn(2, 7, 3))
    assert a.shape == (2, 7, 2) and v.shape == (2, 7, 1)
    n_params = 2 * ((4 * 8 + 8) + (8 * 8 + 8)) + (8 * 2 + 2) + (8 * 1 + 1)
    assert m.generated_params(None, torch.randn(2, 7, 3)).shape == (2, 7, n_params)


def test_film_bias_init_is_plain_network_and_independent_of_cond():
    torch.manual_seed(6)
    m = HyperActorCritic(6, 4, [16, 16], 3, film=True)
    x = torch.randn(5, 6)
    a1, v1 = m(x, torch.randn(5, 4))
    a2, v2 = m(x, torch.randn(5, 4))
    assert torch.allclose(a1, a2, atol=1e-6) and torch.allclose(v1, v2, atol=1e-6)
    h = x
    for j in range(3):
        h = m.actor.plain[j](h)
        h = torch.tanh(h) if j < 2 else h
    assert torch.allclose(a1, h, atol=1e-6)
    # FiLM params: scale 1, shift 0
    p = m.generated_params(x, torch.randn(5, 4))
    assert p.shape == (5, 2 * 2 * (16 + 16 + 3) - 2 * 3 + 2 * 1)


def test_bias_hyperinit_needs_head_bias():
    with pytest.raises(ValueError):
        HyperActorCritic(4, 3, [8], 2, head_bias=False)
    HyperActorCritic(4, 3, [8], 2, head_bias=False, init="hfi")


def test_mlp_actor_critic():
    torch.manual_seed(7)
    m = MLPActorCritic(6, 3, [32, 32], 4, activation="relu", actor_head_gain=0.01)
    a, v = m(torch.randn(10, 6), torch.randn(10, 3))
    assert a.shape == (10, 4) and v.shape == (10, 1)
    assert m.actor[0].weight.shape == (32, 9)
    assert torch.allclose(m.actor[0].weight.norm(dim=1), torch.full((32,), math.sqrt(2.0)), rtol=1e-4)
    assert torch.allclose(m.actor_head.weight.norm(dim=1), torch.full((4,), 0.01), rtol=1e-4)
    assert torch.allclose(m.value_head.weight.norm(dim=1), torch.ones(1), rtol=1e-4)
    a2, _ = MLPActorCritic(6, 0, [8], 2)(torch.randn(3, 6), None)
    assert a2.shape == (3, 2)


def test_normc():
    w = normc_(torch.empty(10, 20), 2.0)
    assert torch.allclose(w.norm(dim=1), torch.full((10,), 2.0))


@pytest.mark.parametrize("init", ["bias_hyperinit", "hfi", "naive_kaiming"])
def test_forward_without_materialised_weights_equals_generated_weights(init):
    """The memory-lean forward (outer product with the head matrix) equals running the
    explicitly generated per-sample weights, after the heads have moved away from init."""
    torch.manual_seed(5)
    net = HyperActorCritic(6, 4, [8, 8], 3, init=init)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x, c = torch.randn(7, 6), torch.randn(7, 4)
    h = net.hyper_embedding(c)
    explicit = x
    params = net.actor.generate(h)
    for i, (W, b) in enumerate(params):
        explicit = torch.bmm(W, explicit[:, :, None]).squeeze(2) + b
        if i < len(params) - 1:
            explicit = net.act(explicit)
    assert torch.allclose(net(x, c)[0], explicit, atol=1e-5)
