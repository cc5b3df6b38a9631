"""TRPO pieces (algorithms/trpo.py): known answers for CG, the KL Hessian-vector product, the
diagonal-Gaussian KL and the trust region after the line search."""
import torch
from torch.distributions import Independent, Normal, kl_divergence
from torch.nn.utils import parameters_to_vector

from algorithms.trpo import TRPOSettings, conjugate_gradient, diag_gaussian_kl, kl_hessian_vector_product, trpo_step


def test_conjugate_gradient_solves_spd_system():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(12, 12, generator=g, dtype=torch.float64)
    a = q @ q.T + 0.5 * torch.eye(12, dtype=torch.float64)
    b = torch.randn(12, generator=g, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iters=40, residual_tol=1e-20)
    assert torch.allclose(x, torch.linalg.solve(a, b), atol=1e-8)
    # a few iterations are only an approximation: the test can tell them apart
    x3 = conjugate_gradient(lambda v: a @ v, b, iters=3)
    assert not torch.allclose(x3, torch.linalg.solve(a, b), atol=1e-3)


def test_diag_gaussian_kl_matches_torch():
    g = torch.Generator().manual_seed(1)
    mu_p, mu_q = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    sd_p, sd_q = torch.rand(5, 3, generator=g) + 0.1, torch.rand(5, 3, generator=g) + 0.1
    ref = kl_divergence(Independent(Normal(mu_p, sd_p), 1), Independent(Normal(mu_q, sd_q), 1))
    assert torch.allclose(diag_gaussian_kl(mu_p, sd_p, mu_q, sd_q), ref, atol=1e-6)
    assert torch.allclose(diag_gaussian_kl(mu_p, sd_p, mu_p, sd_p), torch.zeros(5), atol=1e-7)


def _tiny_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()


def _kl_of(net, params_vec, obs, old_mu):
    """Mean KL(old || new) of unit-variance Gaussians whose mean is the net with flat params."""
    shapes = [p.shape for p in net.parameters()]
    chunks, i = [], 0
    for s in shapes:
        n = int(torch.tensor(s).prod())
        chunks.append(params_vec[i:i + n].view(s))
        i += n
    h = torch.tanh(obs @ chunks[0].T + chunks[1])
    mu = h @ chunks[2].T + chunks[3]
    sd = torch.ones_like(mu)
    return diag_gaussian_kl(old_mu, sd, mu, sd).mean()


def test_kl_hvp_equals_full_hessian_times_v():
    net = _tiny_net()
    obs = torch.randn(7, 3, dtype=torch.float64)
    with torch.no_grad():
        old_mu = net(obs) + 0.3 * torch.randn(7, 2, dtype=torch.float64)  # off the minimum: a full Hessian
    params = list(net.parameters())
    kl = diag_gaussian_kl(old_mu, torch.ones_like(old_mu), net(obs), torch.ones_like(old_mu)).mean()
    damping = 0.1
    hvp = kl_hessian_vector_product(kl, params, damping)
    flat = parameters_to_vector(params).detach()
    hess = torch.autograd.functional.hessian(lambda v: _kl_of(net, v, obs, old_mu), flat)
    v = torch.randn_like(flat)
    assert torch.allclose(hvp(v), hess @ v + damping * v, atol=1e-10)


def _policy_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(64, 3, generator=g)
    actions = torch.randn(64, 2, generator=g)
    adv = torch.randn(64, generator=g)
    torch.manual_seed(seed)
    net = torch.nn.Linear(3, 2)
    log_std = torch.nn.Parameter(torch.zeros(2))
    params = [*net.parameters(), log_std]
    with torch.no_grad():
        old_mu, old_sd = net(obs).clone(), log_std.exp().expand(64, 2).clone()

    def logp(mu, sd):
        return Independent(Normal(mu, sd), 1).log_prob(actions)

    def surrogate(with_graph):
        with torch.set_grad_enabled(with_graph):
            mu, sd = net(obs), log_std.exp().expand(64, 2)
            ratio = torch.exp(logp(mu, sd) - logp(old_mu, old_sd))
            return -(ratio * adv).mean(), diag_gaussian_kl(old_mu, old_sd, mu, sd).mean()

    return params, surrogate


def test_trpo_step_respects_max_kl_and_improves():
    params, surrogate = _policy_problem()
    before = parameters_to_vector(params).detach().clone()
    settings = TRPOSettings(max_kl=1e-3, cg_iters=10, cg_damping=1e-5, ls_max_steps=15, ls_backtrack_ratio=0.8)
    stats = trpo_step(params, surrogate, settings)
    loss, kl = surrogate(False)
    assert 0.0 < float(kl) < settings.max_kl
    assert float(loss) < stats["loss_before"]
    assert stats["step_fraction"] > 0.0
    assert not torch.equal(parameters_to_vector(params).detach(), before)
    # the quadratic model puts the full step at the trust-region boundary: KL(full step) is close to max_kl
    assert float(kl) > 0.1 * settings.max_kl


def test_trpo_restores_parameters_when_no_step_is_accepted():
    params, surrogate = _policy_problem(1)
    before = parameters_to_vector(params).detach().clone()

    def never_better(with_graph):
        loss, kl = surrogate(with_graph)
        return (loss, kl) if with_graph else (loss.detach() * 0 + 1e9, kl)

    stats = trpo_step(params, never_better, TRPOSettings(max_kl=1e-2, ls_max_steps=4))
    assert torch.equal(parameters_to_vector(params).detach(), before)
    assert stats["step_fraction"] == 0.0 and stats["kl_after"] == 0.0
