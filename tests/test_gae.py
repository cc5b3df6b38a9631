"""Known-answer returns: GAE, Monte-Carlo returns, done and time-limit handling."""
import torch

from algorithms.storage import compute_gae


def test_gae_known_answer_with_done():
    # one copy, 3 steps; the BAMDP ends after step 1 (so step 1 does not bootstrap)
    r = torch.tensor([[1.0], [2.0], [3.0]])
    v = torch.tensor([[0.5], [1.0], [1.5], [2.0]])
    done = torch.tensor([[False], [True], [False]])
    trunc = torch.zeros_like(done)
    g, lam = 0.9, 0.8
    # by hand: deltas
    d2 = 3 + g * 2.0 - 1.5
    d1 = 2 + 0 - 1.0
    d0 = 1 + g * 1.0 - 0.5
    a2 = d2
    a1 = d1                       # done: no carry from step 2
    a0 = d0 + g * lam * a1
    expected = torch.tensor([[a0 + 0.5], [a1 + 1.0], [a2 + 1.5]])
    out = compute_gae(r, v, done, trunc, g, lam)
    assert torch.allclose(out, expected, atol=1e-6)


def test_monte_carlo_returns_without_gae():
    r = torch.tensor([[1.0], [1.0], [1.0]])
    v = torch.tensor([[0.0], [0.0], [0.0], [10.0]])
    done = torch.zeros(3, 1, dtype=torch.bool)
    out = compute_gae(r, v, done, torch.zeros_like(done), 0.5, 1.0, use_gae=False)
    # 1 + .5 + .25 + .125 * 10
    assert torch.allclose(out[0], torch.tensor([1 + 0.5 + 0.25 + 0.125 * 10]))


def test_proper_time_limits_zero_advantage_at_truncation():
    r = torch.tensor([[1.0], [5.0]])
    v = torch.tensor([[0.3], [0.7], [9.0]])
    done = torch.tensor([[False], [True]])
    trunc = torch.tensor([[False], [True]])
    on = compute_gae(r, v, done, trunc, 0.9, 0.9, proper_time_limits=True)
    off = compute_gae(r, v, done, trunc, 0.9, 0.9, proper_time_limits=False)
    assert torch.allclose(on[1], v[1])           # truncated: return = value, advantage 0
    assert torch.allclose(off[1], torch.tensor([5.0]))  # terminal: return = reward


def test_gae_lambda_one_equals_monte_carlo():
    torch.manual_seed(0)
    r, v = torch.randn(6, 3), torch.randn(7, 3)
    done = torch.rand(6, 3) < 0.3
    trunc = torch.zeros_like(done)
    a = compute_gae(r, v, done, trunc, 0.95, 1.0, use_gae=True)
    b = compute_gae(r, v, done, trunc, 0.95, 1.0, use_gae=False)
    assert torch.allclose(a, b, atol=1e-5)
