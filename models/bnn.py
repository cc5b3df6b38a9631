"""VIME's Bayesian dynamics model (Houthooft et al. 2016; Blundell et al. 2015), functional.

A fully factorised Gaussian over every weight and bias: mean ``mu`` and ``rho`` with
std = softplus(rho); prior N(0, prior_sd^2). Input (s, a), output the next observation
(absolute, as MIME), hidden tanh layers. The likelihood is N(s' | f_w(s, a), likelihood_sd^2).

Forward: local reparameterisation. Per layer the pre-activation mean is g = x mu_W + mu_b, its
variance d = x^2 sigma_W^2 + sigma_b^2, and the sample g + sqrt(d) * eps. MIME draws eps with
shape (units,), one noise vector shared by every row of the batch (reference 2.9 quirk 3), which
correlates the samples of a batch; here eps is drawn per row (``shared_eps=True`` gives MIME's).

All maths is in pure functions of a parameter dict, so that ``torch.func`` can take per-sample
gradients (information gain) and per-task adaptations; noise is passed in explicitly (a list,
one tensor [S, rows or 1, units] per layer), which makes every result reproducible and lets a
vectorised computation use exactly the noise of a loop.

    negative ELBO per transition = ( KL(q || prior) / n_batches - mean_s sum_k w_k log p(y_k | x_k, w_s) ) / sum_k w_k
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

Params = dict[str, torch.Tensor]
_LOG_2PI = math.log(2.0 * math.pi)


def softplus_inverse(x: float) -> float:
    return math.log(math.expm1(x))


def gaussian_kl(mu_p: torch.Tensor, sd_p: torch.Tensor, mu_q: torch.Tensor, sd_q: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_p, sd_p^2) || N(mu_q, sd_q^2)) summed over all entries.

    (MIME's ``kl_div_new_old_with_params`` used softplus(old_mu) as the old std, quirk 2; here the
    old std is always softplus(old_rho).)"""
    return (torch.log(sd_q / sd_p) + (sd_p.pow(2) + (mu_p - mu_q).pow(2)) / (2.0 * sd_q.pow(2)) - 0.5).sum()


class BayesianDynamics(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, hidden: list[int] | tuple[int, ...] = (32,), prior_sd: float = 0.01,
                 likelihood_sd: float = 0.1, n_samples: int = 3, n_batches: int = 1, shared_eps: bool = False):
        super().__init__()
        self.sizes = [in_dim, *hidden, out_dim]
        self.prior_sd, self.likelihood_sd = prior_sd, likelihood_sd
        self.n_samples, self.n_batches, self.shared_eps = n_samples, n_batches, shared_eps
        rho0 = softplus_inverse(prior_sd)
        for i, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            # MIME initialises mu ~ N(0, 1); scaled by 1/sqrt(fan_in) here so that deeper/wider
            # inputs do not saturate the tanh layers at the start
            self.register_parameter(f"w_mu{i}", nn.Parameter(torch.randn(n_in, n_out) / math.sqrt(n_in)))
            self.register_parameter(f"w_rho{i}", nn.Parameter(torch.full((n_in, n_out), rho0)))
            self.register_parameter(f"b_mu{i}", nn.Parameter(torch.zeros(n_out)))
            self.register_parameter(f"b_rho{i}", nn.Parameter(torch.full((n_out,), rho0)))

    @property
    def num_layers(self) -> int:
        return len(self.sizes) - 1

    def params(self) -> Params:
        return dict(self.named_parameters())

    # ----- noise
    def sample_noise(self, rows: int, batch: tuple[int, ...] = (), generator: torch.Generator | None = None) -> list:
        """Local-reparameterisation noise: per layer [*batch, S, rows (1 if shared_eps), units]."""
        r = 1 if self.shared_eps else rows
        return [torch.randn(*batch, self.n_samples, r, n, generator=generator) for n in self.sizes[1:]]

    # ----- functional maths
    def predict(self, params: Params, x: torch.Tensor, noise: list | None = None) -> torch.Tensor:
        """x [n, in] -> predictions [S, n, out] (noise None: the mean network, [1, n, out])."""
        h = x.unsqueeze(0)
        for i in range(self.num_layers):
            mean = h @ params[f"w_mu{i}"] + params[f"b_mu{i}"]
            if noise is not None:
                var = h.pow(2) @ F.softplus(params[f"w_rho{i}"]).pow(2) + F.softplus(params[f"b_rho{i}"]).pow(2)
                mean = mean + torch.sqrt(var) * noise[i]
            h = torch.tanh(mean) if i < self.num_layers - 1 else mean
        return h

    def log_likelihood(self, params: Params, x: torch.Tensor, y: torch.Tensor, noise: list | None) -> torch.Tensor:
        """log N(y | f_w(x), likelihood_sd^2) per MC sample and row: [S, n]."""
        pred = self.predict(params, x, noise)
        sd = self.likelihood_sd
        return (-0.5 * ((y - pred) / sd).pow(2) - math.log(sd) - 0.5 * _LOG_2PI).sum(-1)

    def kl_to_prior(self, params: Params) -> torch.Tensor:
        total = 0.0
        for i in range(self.num_layers):
            for mu, rho in ((f"w_mu{i}", f"w_rho{i}"), (f"b_mu{i}", f"b_rho{i}")):
                sd = F.softplus(params[rho])
                total = total + gaussian_kl(params[mu], sd, torch.zeros_like(sd), torch.full_like(sd, self.prior_sd))
        return total

    def kl_between(self, new: Params, old: Params) -> torch.Tensor:
        """KL(q_new || q_old) over every weight and bias."""
        total = 0.0
        for i in range(self.num_layers):
            for mu, rho in ((f"w_mu{i}", f"w_rho{i}"), (f"b_mu{i}", f"b_rho{i}")):
                total = total + gaussian_kl(new[mu], F.softplus(new[rho]), old[mu], F.softplus(old[rho]))
        return total

    def elbo_loss(self, params: Params, x: torch.Tensor, y: torch.Tensor, noise: list,
                  weight: torch.Tensor | None = None) -> torch.Tensor:
        """Negative ELBO per (weighted) transition; ``weight`` [n] masks padded steps."""
        ll = self.log_likelihood(params, x, y, noise).mean(0)
        if weight is None:
            weight = torch.ones_like(ll)
        n = weight.sum().clamp_min(1.0)
        return (self.kl_to_prior(params) / self.n_batches - (ll * weight).sum()) / n

    def mse(self, params: Params, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Mean squared error of the mean network's prediction."""
        err = (self.predict(params, x)[0] - y).pow(2).mean(-1)
        if weight is None:
            return err.mean()
        return (err * weight).sum() / weight.sum().clamp_min(1.0)
