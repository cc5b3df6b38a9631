"""VIME's information-gain bonus with MIME's MAML-style dynamics prior (reference section 2.3-2.5).

Information gain of a transition k = (s, a, s'): the posterior q_old takes one optimiser step on
the "latest sample" loss  L_k(q) = KL(q || q_old) - (1/S) sum_s log p(s' | s, a, w_s)  and the bonus
is KL(q_new || q_old), clipped to [0, clip]. At q = q_old the KL term has value and gradient 0, so
the step only needs g_k = d/dq [-(1/S) sum_s log p]. Computed for every transition at once:

    "step"          per-sample gradients with torch.func.vmap(grad(...)), then the closed-form update
                    (``rule`` sgd: -lr g; adam: a fresh Adam's first step -lr g / (|g| + 1e-8)) and the
                    closed-form KL for every transition
    "second_order"  VIME's approximation KL ~ 0.5 * step^2 * sum g^2 / H with H the diagonal Hessian
                    of KL(q || q_old) at q_old (1/sigma^2 for means, 2 sigmoid(rho)^2 / sigma^2 for rho)

``info_gain_loop`` is the per-transition reference (one real optimiser step per transition, then
restore), used by the tests. MIME loops in Python over transitions and keeps one Adam state along a
trajectory (the updates are undone, the moments are not); a fresh optimiser per transition makes
the bonus independent of transition order, which is what allows vectorising it. With a fresh Adam
the first step is lr * sign(g) for every parameter whatever the size of g, so the KL hardly depends
on the transition (measured: identical values for different transitions); the default is therefore
``rule="sgd"``, whose KL grows with the squared gradient (~1000x larger for novel transitions in
tests/test_vime.py).

Normalisation of the bonus (``BonusNormaliser``): "batch" (MIME: standardise per task batch) or
"median" (VIME: divide by the mean of the last 10 batch medians).

Dynamics prior (``VIMEDynamics.meta_update``, MIME 2.4): per task one SGD step of the ELBO on its
train transitions (phi' = phi - inner_lr grad), the meta-loss is the mean over tasks of the ELBO of
the valid transitions under phi'; Adam on phi. Fixed quirks, each with a flag for the original:
  * MIME's chunk loop assigns ``elbo = ...`` instead of ``+=`` so only the last 128-transition chunk
    of the valid data counts; here all of them do (``last_chunk_only=True``: the original)
  * MIME recreates Adam at every call (its moments never persist) with lr * num_tasks^2; here one
    persistent Adam with the plain lr (``mime_optimiser=True``: the original)
"""
from __future__ import annotations

from collections import deque

import torch
import torch.nn.functional as F
from torch.func import grad, vmap

from models.bnn import BayesianDynamics, Params


# ----------------------------------------------------------------------------- information gain
def _sample_nll(bnn: BayesianDynamics, params: Params, x: torch.Tensor, y: torch.Tensor, noise: list) -> torch.Tensor:
    """-(1/S) sum_s log p(y | x, w_s) of ONE transition (x [in], y [out], noise per layer [S, 1, units])."""
    return -bnn.log_likelihood(params, x.unsqueeze(0), y.unsqueeze(0), noise).mean()


def _updated(params: Params, grads: Params, lr: float, rule: str) -> Params:
    if rule == "sgd":
        return {n: p - lr * grads[n] for n, p in params.items()}
    if rule == "adam":
        return {n: p - lr * grads[n] / (grads[n].abs() + 1e-8) for n, p in params.items()}
    raise ValueError(f"info-gain update rule must be sgd or adam, got {rule!r}")


def info_gain(bnn: BayesianDynamics, params: Params, x: torch.Tensor, y: torch.Tensor, noise: list, lr: float,
              rule: str = "sgd", method: str = "step", second_order_step: float = 0.01, clip: float = 1000.0) -> torch.Tensor:
    """Information gain [K] of K transitions x [K, in] -> y [K, out], all at once.
    ``noise``: per layer [K, S, 1, units] (one draw per transition)."""
    params = {n: p.detach() for n, p in params.items()}
    grads = vmap(grad(lambda p, xi, yi, ni: _sample_nll(bnn, p, xi, yi, ni)), in_dims=(None, 0, 0, 0))(params, x, y, noise)
    if method == "second_order":
        total = torch.zeros(x.shape[0])
        for n, p in params.items():
            if "rho" in n:
                sd = F.softplus(p)
                hess = 2.0 * torch.sigmoid(p).pow(2) / sd.pow(2)
            else:
                sd = F.softplus(params[n.replace("mu", "rho")])
                hess = 1.0 / sd.pow(2)
            total = total + (grads[n].pow(2) / hess).flatten(1).sum(1)
        return (0.5 * second_order_step ** 2 * total).clamp(0.0, clip)
    if method != "step":
        raise ValueError(f"info-gain method must be step or second_order, got {method!r}")
    new = _updated({n: p.unsqueeze(0) for n, p in params.items()}, grads, lr, rule)
    kl = vmap(lambda q: bnn.kl_between(q, params))(new)
    return kl.clamp(0.0, clip)


def info_gain_loop(bnn: BayesianDynamics, params: Params, x: torch.Tensor, y: torch.Tensor, noise: list, lr: float,
                   rule: str = "sgd", clip: float = 1000.0) -> torch.Tensor:
    """Reference: per transition, a fresh optimiser takes one real step on L_k, KL is measured, the
    parameters are restored. Slow (a Python loop); the tests compare ``info_gain`` against it."""
    old = {n: p.detach().clone() for n, p in params.items()}
    out = []
    for k in range(x.shape[0]):
        q = {n: p.clone().requires_grad_(True) for n, p in old.items()}
        opt = (torch.optim.SGD if rule == "sgd" else torch.optim.Adam)(list(q.values()), lr=lr)
        loss = bnn.kl_between(q, old) + _sample_nll(bnn, q, x[k], y[k], [nz[k] for nz in noise])
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            out.append(bnn.kl_between(q, old).clamp(0.0, clip))
    return torch.stack(out)


class BonusNormaliser:
    """Bonus [M, T, F] with mask -> normalised bonus. "batch": (b - mean) / (std + 1e-8) per task over its
    valid steps (MIME); "median": b / mean of the last ``window`` batch medians (VIME)."""

    def __init__(self, mode: str = "batch", window: int = 10):
        if mode not in ("batch", "median"):
            raise ValueError(f"bonus normalisation must be batch or median, got {mode!r}")
        self.mode, self.medians = mode, deque(maxlen=window)

    def __call__(self, bonus: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.mode == "batch":
            from algorithms.maml import masked_normalise

            return masked_normalise(bonus, mask)
        self.medians.append(float(bonus[mask > 0].median()) if (mask > 0).any() else 0.0)
        scale = sum(self.medians) / len(self.medians)
        return bonus / max(scale, 1e-8) * mask

    def state_dict(self) -> dict:
        return {"medians": list(self.medians)}

    def load_state_dict(self, state: dict) -> None:
        self.medians.clear()
        self.medians.extend(state["medians"])


# ----------------------------------------------------------------------------- dynamics prior
class VIMEDynamics:
    """The BNN prior, its per-task adaptation, its meta-update and the per-task bonus."""

    def __init__(self, bnn: BayesianDynamics, inner_lr: float = 1e-4, meta_lr: float = 1e-4, first_order: bool = False,
                 info_gain_lr: float | None = None, rule: str = "sgd", method: str = "step",
                 second_order_step: float = 0.01, clip: float = 1000.0, last_chunk_only: bool = False,
                 chunk: int = 128, mime_optimiser: bool = False):
        self.bnn, self.inner_lr, self.meta_lr, self.first_order = bnn, inner_lr, meta_lr, first_order
        self.info_gain_lr = inner_lr if info_gain_lr is None else info_gain_lr
        self.rule, self.method, self.second_order_step, self.clip = rule, method, second_order_step, clip
        self.last_chunk_only, self.chunk, self.mime_optimiser = last_chunk_only, chunk, mime_optimiser
        self.optimiser = torch.optim.Adam(bnn.parameters(), lr=meta_lr)

    # ----- per task
    def adapt(self, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, first_order: bool | None = None) -> Params:
        """phi'_m = phi - inner_lr * grad ELBO(train_m) for every task: x [M, n, in] -> params with dim M."""
        first_order = self.first_order if first_order is None else first_order
        params = self.bnn.params()
        noise = self.bnn.sample_noise(x.shape[1], (x.shape[0],))
        grads = vmap(grad(self.bnn.elbo_loss), in_dims=(None, 0, 0, 0, 0))(params, x, y, noise, weight)
        if first_order:
            grads = {n: g.detach() for n, g in grads.items()}
        return {n: p - self.inner_lr * grads[n] for n, p in params.items()}

    def _valid_weight(self, weight: torch.Tensor) -> torch.Tensor:
        """MIME's quirk: only the last ``chunk`` transitions of the valid data enter the meta-loss."""
        if not self.last_chunk_only:
            return weight
        n = weight.shape[-1]
        start = ((n - 1) // self.chunk) * self.chunk
        keep = torch.zeros_like(weight)
        keep[..., start:] = 1.0
        return weight * keep

    def meta_update(self, train: tuple, valid: tuple, num_updates: int = 1) -> dict[str, float]:
        """``num_updates`` Adam steps on mean_m ELBO(valid_m; phi'_m); train/valid = (x, y, weight) with
        a leading task dim. Returns the mean-prediction MSE on valid data before/after adaptation."""
        if self.mime_optimiser:
            self.optimiser = torch.optim.Adam(self.bnn.parameters(), lr=self.meta_lr * train[0].shape[0] ** 2)
        stats: dict[str, float] = {}
        vw = self._valid_weight(valid[2])
        for u in range(num_updates):
            adapted = self.adapt(*train)
            noise = self.bnn.sample_noise(valid[0].shape[1], (valid[0].shape[0],))
            loss = vmap(self.bnn.elbo_loss)(adapted, valid[0], valid[1], noise, vw).mean()
            self.optimiser.zero_grad()
            loss.backward()
            self.optimiser.step()
            if u == 0 or u == num_updates - 1:
                with torch.no_grad():
                    prior = {n: p.detach() for n, p in self.bnn.params().items()}
                    before = vmap(self.bnn.mse, in_dims=(None, 0, 0, 0))(prior, *valid).mean()
                    after = vmap(self.bnn.mse)({n: p.detach() for n, p in adapted.items()}, *valid).mean()
                key = "first" if u == 0 else "last"
                stats[f"mse_prior_{key}"], stats[f"mse_adapted_{key}"] = float(before), float(after)
            stats["elbo_loss"] = float(loss.detach())
        return stats

    def bonus(self, params: Params | None, x: torch.Tensor, y: torch.Tensor, batched: bool = False) -> torch.Tensor:
        """Raw information gain [M, n] of every task's transitions x [M, n, in] -> y [M, n, out], against
        the prior (params None) or per-task posteriors (``batched``: params with a leading dim M)."""
        params = self.bnn.params() if params is None else params
        out = []
        for m in range(x.shape[0]):
            p = {n: v[m] for n, v in params.items()} if batched else params
            noise = self.bnn.sample_noise(1, (x.shape[1],))
            out.append(info_gain(self.bnn, p, x[m], y[m], noise, self.info_gain_lr, self.rule, self.method,
                                 self.second_order_step, self.clip))
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"bnn": self.bnn.state_dict(), "optimiser": self.optimiser.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.bnn.load_state_dict(state["bnn"])
        self.optimiser.load_state_dict(state["optimiser"])
