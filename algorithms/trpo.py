"""Trust-region policy optimisation pieces (Schulman et al. 2015), as MAML-TRPO uses them.

    diag_gaussian_kl(mu_p, std_p, mu_q, std_q)   KL(p || q) of diagonal Gaussians, summed over the last dim
    conjugate_gradient(Avp, b, iters)            x ~= A^-1 b for a symmetric positive definite A given as A @ v
    kl_hessian_vector_product(kl, params, damp)  v -> (d^2 KL / d theta^2) v + damp * v  (Fisher-vector product)
    trpo_step(params, surrogate, ...)            one natural-gradient step with backtracking line search

``trpo_step`` only needs a ``surrogate(with_graph) -> (loss, kl)`` closure: with ``with_graph``
True the loss and KL must be differentiable in ``params`` (the KL against a *fixed* old policy,
so that it is 0 with zero gradient at the current parameters and its Hessian is the Fisher);
with False they are only evaluated (line search). The closure decides how they are computed
(MAML recomputes the inner-loop adaptation inside it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters


def diag_gaussian_kl(mu_p: torch.Tensor, std_p: torch.Tensor, mu_q: torch.Tensor, std_q: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_p, std_p^2) || N(mu_q, std_q^2)) for diagonal Gaussians, summed over the last dim."""
    var_p, var_q = std_p.pow(2), std_q.pow(2)
    return (torch.log(std_q / std_p) + (var_p + (mu_p - mu_q).pow(2)) / (2.0 * var_q) - 0.5).sum(-1)


def flat_grad(output: torch.Tensor, params: Sequence[torch.Tensor], create_graph: bool = False,
              retain_graph: bool | None = None) -> torch.Tensor:
    """d output / d params as one flat vector (zeros for parameters ``output`` does not use)."""
    grads = torch.autograd.grad(output, list(params), create_graph=create_graph, retain_graph=retain_graph,
                                allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)])


def conjugate_gradient(avp: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iters: int = 10,
                       residual_tol: float = 1e-10) -> torch.Tensor:
    """Solve A x = b for symmetric positive definite A, given only v -> A v, from x0 = 0."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r.dot(r)
    for _ in range(iters):
        if rr.item() < residual_tol:
            break
        ap = avp(p)
        alpha = rr / p.dot(ap)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = r.dot(r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x.detach()


def kl_hessian_vector_product(kl: torch.Tensor, params: Sequence[torch.Tensor],
                              damping: float = 1e-2) -> Callable[[torch.Tensor], torch.Tensor]:
    """v -> H v + damping * v with H the Hessian of the scalar ``kl`` w.r.t. ``params``.

    The first derivative is built once (with a graph); each product differentiates grad . v.
    """
    params = list(params)
    grad_kl = flat_grad(kl, params, create_graph=True)

    def hvp(v: torch.Tensor) -> torch.Tensor:
        return flat_grad(grad_kl.dot(v.detach()), params, retain_graph=True).detach() + damping * v

    return hvp


@dataclass
class TRPOSettings:
    """The outer-step hyperparameters (MAML-RL's yaml defaults)."""

    max_kl: float = 1e-2
    cg_iters: int = 10
    cg_damping: float = 1e-5
    ls_max_steps: int = 15
    ls_backtrack_ratio: float = 0.8


def trpo_step(params: Sequence[torch.Tensor], surrogate: Callable[[bool], tuple[torch.Tensor, torch.Tensor]],
              settings: TRPOSettings, initial: tuple[torch.Tensor, torch.Tensor] | None = None,
              grad: torch.Tensor | None = None) -> dict[str, float]:
    """One TRPO update of ``params`` in place; returns loss/KL before and after and the accepted step.

    step direction s = H^-1 g by conjugate gradient, scaled so that 0.5 s^T H s = max_kl; the
    line search tries fractions 1, r, r^2, ... (r = ls_backtrack_ratio) and accepts the first that
    lowers the loss AND keeps KL < max_kl; after ``ls_max_steps`` failures the parameters are
    restored. ``initial`` may hold the (loss, kl) of ``surrogate(True)`` when the caller needs the
    same graph for something else first (MIME's eta gradient); ``grad`` d loss / d params likewise.
    """
    params = list(params)
    loss_before, kl_before = surrogate(True) if initial is None else initial
    if grad is None:
        grad = flat_grad(loss_before, params, retain_graph=True)
    hvp = kl_hessian_vector_product(kl_before, params, settings.cg_damping)
    step_dir = conjugate_gradient(hvp, grad, settings.cg_iters)
    shs = 0.5 * step_dir.dot(hvp(step_dir))
    lagrange = torch.sqrt(shs.clamp_min(1e-12) / settings.max_kl)
    full_step = step_dir / lagrange
    old = parameters_to_vector(params).detach().clone()
    loss_before_val, kl_before_val = float(loss_before.detach()), float(kl_before.detach())
    del hvp, loss_before, kl_before
    stats = {"loss_before": loss_before_val, "kl_before": kl_before_val, "step_fraction": 0.0,
             "line_search_steps": float(settings.ls_max_steps)}
    frac = 1.0
    for k in range(settings.ls_max_steps):
        with torch.no_grad():
            vector_to_parameters(old - frac * full_step, params)
        loss, kl = surrogate(False)
        loss, kl = float(loss.detach()), float(kl.detach())
        if loss - loss_before_val < 0.0 and kl < settings.max_kl:
            stats.update(loss_after=loss, kl_after=kl, step_fraction=frac, line_search_steps=float(k))
            return stats
        frac *= settings.ls_backtrack_ratio
    with torch.no_grad():
        vector_to_parameters(old, params)
    stats.update(loss_after=loss_before_val, kl_after=0.0)
    return stats
