"""MAML-TRPO (Finn et al. 2017, pytorch-maml-rl) with MIME's and E-MAML's variations.

Data layout: a batch of M tasks, F trajectories each, at most T steps: ``Episodes`` holds
obs [M, T, F, d], actions [M, T, F, a], rewards/mask [M, T, F]. Everything per task is
computed for all tasks at once: the inner-loop gradient with ``torch.func.vmap(torch.func.grad)``
(adapted parameters carry a leading task dim M), the policy on adapted parameters with
``vmap(functional_call)``; the linear baseline solves M ridge regressions in one batched call.

One meta-iteration (``MAMLTRPO.step``), given the train episodes of every inner step and the
valid (post-adaptation) episodes sampled by the trainer:

    inner loss   L_in(theta) = -mean_{valid steps}[ log pi_theta(a|s) * A ]   (A: linear baseline +
                 GAE, normalised per task);  theta' = theta - fast_lr * grad L_in  (k steps;
                 second order unless first_order)
    outer loss   L_out = -mean_tasks mean[ pi_theta'(a|s) / pi_old(a|s) * A_valid ]
                 (+ E-MAML: the pre-update term, see ``MAMLSettings.e_maml``)
    KL           mean_tasks mean[ KL(pi_old || pi_theta') ]
    TRPO step    on theta (algorithms/trpo.py)
    MIME eta     when learnable: the inner rewards are (1 + floor - sigma(eta)) r_ext + (sigma(eta) + floor)
                 r_int, so theta' depends on eta; the extrinsic meta-objective
                 L_ext = -mean[ ratio_theta'(eta) * r_ext_valid ] gives d L_ext / d eta, and
                 eta <- eta - clip(eta_lr * g / sigma(eta), -0.3, 0.3)   (MIME 2.5)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from algorithms.linear_baseline import LinearFeatureBaseline
from algorithms.trpo import TRPOSettings, diag_gaussian_kl, flat_grad, trpo_step

Params = dict[str, torch.Tensor]
_LOG_2PI = math.log(2.0 * math.pi)


# ----------------------------------------------------------------------------- policy
class GaussianMLPPolicy(nn.Module):
    """MAML's NormalMLPPolicy: tanh MLP mean, state-independent log-std (clamped at log(min_std)),
    Xavier-uniform weights and zero biases. ``forward(obs) -> (mean, std)``."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] | list[int] = (64, 64),
                 activation: str = "tanh", init_std: float = 1.0, min_std: float = 1e-6):
        super().__init__()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        sizes = [obs_dim, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        self.mu = nn.Linear(sizes[-1], act_dim)
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(init_std)))
        self.min_log_std = math.log(min_std)
        self.act = {"tanh": torch.tanh, "relu": torch.relu, "leaky-relu": nn.functional.leaky_relu}[activation]
        for layer in [*self.hidden, self.mu]:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = obs
        for layer in self.hidden:
            x = self.act(layer(x))
        std = torch.exp(self.log_std.clamp_min(self.min_log_std))
        mu = self.mu(x)
        return mu, std.expand_as(mu)

    def params(self) -> Params:
        return dict(self.named_parameters())

    def dist(self, obs: torch.Tensor, params: Params | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) with ``params`` (one set) instead of the module's own."""
        return self(obs) if params is None else functional_call(self, params, (obs,))

    def dist_per_task(self, obs: torch.Tensor, params: Params) -> tuple[torch.Tensor, torch.Tensor]:
        """obs [M, ...] with per-task params (leading dim M) -> (mean, std) [M, ..., a]."""
        return vmap(lambda p, o: functional_call(self, p, (o,)))(params, obs)


def gaussian_log_prob(actions: torch.Tensor, mu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log N(actions | mu, std^2), summed over the last dim."""
    return (-0.5 * ((actions - mu) / std).pow(2) - torch.log(std) - 0.5 * _LOG_2PI).sum(-1)


# ----------------------------------------------------------------------------- episodes
@dataclass
class Episodes:
    """Trajectories of M tasks x F copies, T steps: obs [M,T,F,d], actions [M,T,F,a], rewards and
    mask [M,T,F]. ``rewards`` are the extrinsic rewards as the learner uses them (standardised /
    noised if asked); ``bonus`` the normalised intrinsic reward or None; ``returns`` the raw
    undiscounted return per task (mean over its trajectories), ``success`` per task (any step
    of any trajectory), ``bonus_returns`` the un-normalised intrinsic return per task."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    mask: torch.Tensor
    returns: torch.Tensor
    success: torch.Tensor | None = None
    bonus: torch.Tensor | None = None
    bonus_returns: torch.Tensor | None = None
    next_obs: torch.Tensor | None = None
    pos: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)

    @property
    def num_tasks(self) -> int:
        return self.obs.shape[0]


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dims=(-2, -1)) -> torch.Tensor:
    """Mean of x over ``dims`` counting only steps with mask 1 (out of place: differentiable)."""
    return (x * mask).sum(dims) / mask.sum(dims).clamp_min(1.0)


def masked_normalise(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / (std + eps) per task over its valid steps; zero at padded steps."""
    mean = masked_mean(x, mask).unsqueeze(-1).unsqueeze(-1)
    var = masked_mean((x - mean).pow(2), mask).unsqueeze(-1).unsqueeze(-1)
    return (x - mean) / (var.sqrt() + eps) * mask


def discounted_returns(rewards: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """R_t = r_t + gamma R_{t+1} along the time dim (-2); rewards/mask [..., T, F]."""
    out, running = [], torch.zeros_like(rewards[..., 0, :])
    for t in range(rewards.shape[-2] - 1, -1, -1):
        running = (rewards[..., t, :] + gamma * running) * mask[..., t, :]
        out.append(running)
    return torch.stack(out[::-1], dim=-2)


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """Generalised advantages; the value after the last (or a padded) step is 0."""
    values = values * mask
    next_values = torch.cat([values[..., 1:, :], torch.zeros_like(values[..., :1, :])], dim=-2)
    deltas = (rewards + gamma * next_values - values) * mask
    out, running = [], torch.zeros_like(rewards[..., 0, :])
    for t in range(rewards.shape[-2] - 1, -1, -1):
        running = (deltas[..., t, :] + gamma * lam * running) * mask[..., t, :]
        out.append(running)
    return torch.stack(out[::-1], dim=-2)


# ----------------------------------------------------------------------------- eta (MIME)
class EtaWeight(nn.Module):
    """MIME's exploration weight: a logit ``eta``; rewards = (1 + floor - s) r_ext + (s + floor) r_int
    with s = sigmoid(eta) (floor 0.05: weights in [0.05, 1.05], summing to 1.1)."""

    def __init__(self, init: float = 0.1, floor: float = 0.05, learnable: bool = False):
        super().__init__()
        if not 0.0 < init < 1.0:
            raise ValueError(f"eta_init must be in (0, 1) (it is sigmoid(eta)), got {init}")
        logit = torch.tensor(math.log(init / (1.0 - init)))
        self.floor, self.learnable = floor, learnable
        if learnable:
            self.logit = nn.Parameter(logit)
        else:
            self.register_buffer("logit", logit)

    def value(self) -> torch.Tensor:
        return torch.sigmoid(self.logit)

    def mix(self, extrinsic: torch.Tensor, intrinsic: torch.Tensor) -> torch.Tensor:
        s = self.value()
        return (1.0 + self.floor - s) * extrinsic + (s + self.floor) * intrinsic

    @torch.no_grad()
    def sgd_step(self, grad_logit: torch.Tensor, lr: float, clip: float = 0.3) -> float:
        """MIME's update: logit -= clip(lr * g / sigmoid(logit), -clip, clip); returns the step."""
        delta = (lr * grad_logit / self.value()).clamp(-clip, clip)
        self.logit -= delta
        return float(delta)


# ----------------------------------------------------------------------------- meta-learner
@dataclass
class MAMLSettings:
    fast_lr: float = 0.1
    num_steps: int = 1
    first_order: bool = False
    gamma: float = 0.99
    gae_lambda: float = 1.0
    trpo: TRPOSettings = field(default_factory=TRPOSettings)
    e_maml: bool = False
    e_maml_mode: str = "trajectory"  # trajectory | elementwise (MIME's pairing)
    eta_lr: float = 1000.0
    eta_objective: str = "reward"  # reward (MIME) | return (reward-to-go)


class MAMLTRPO:
    """The meta-learner: inner adaptation, outer surrogate and TRPO step (+ E-MAML, MIME eta)."""

    def __init__(self, policy: GaussianMLPPolicy, settings: MAMLSettings, eta: EtaWeight | None = None):
        if settings.e_maml_mode not in ("trajectory", "elementwise"):
            raise ValueError(f"e_maml_mode must be trajectory or elementwise, got {settings.e_maml_mode!r}")
        if settings.eta_objective not in ("reward", "return"):
            raise ValueError(f"eta_objective must be reward or return, got {settings.eta_objective!r}")
        self.policy, self.s, self.eta = policy, settings, eta
        self.baseline = LinearFeatureBaseline(policy.obs_dim)

    # ----- advantages
    def rewards(self, eps: Episodes, use_bonus: bool) -> torch.Tensor:
        """The rewards the policy gradient uses: extrinsic, or eta-mixed with the bonus."""
        if use_bonus and eps.bonus is not None and self.eta is not None:
            return self.eta.mix(eps.rewards, eps.bonus) * eps.mask
        return eps.rewards * eps.mask

    def advantages(self, eps: Episodes, use_bonus: bool) -> torch.Tensor:
        """Baseline + GAE advantages, normalised per task: [M, T, F] (differentiable in eta)."""
        rew = self.rewards(eps, use_bonus)
        returns = discounted_returns(rew, eps.mask, self.s.gamma)
        values = self.baseline.fit_predict(eps.obs, returns, eps.mask).to(rew.dtype)
        return masked_normalise(gae(rew, values, eps.mask, self.s.gamma, self.s.gae_lambda), eps.mask)

    # ----- inner loop
    def _inner_loss(self, params: Params, obs, actions, adv, mask) -> torch.Tensor:
        mu, std = functional_call(self.policy, params, (obs,))
        return -masked_mean(gaussian_log_prob(actions, mu, std) * adv, mask)

    def inner_gradients(self, params: Params, eps: Episodes, adv: torch.Tensor, batched: bool) -> Params:
        """d L_in / d params for every task at once: per-task grads with a leading dim M.
        ``batched``: params already carry the task dim (after a first inner step)."""
        fn = vmap(grad(self._inner_loss), in_dims=(0 if batched else None, 0, 0, 0, 0))
        return fn(params, eps.obs, eps.actions, adv, eps.mask)

    def adapt(self, params: Params, train: list[Episodes], first_order: bool, use_bonus: bool,
              advantages: list[torch.Tensor] | None = None) -> Params:
        """theta_k+1 = theta_k - fast_lr * grad L_in(theta_k; train[k]) for each inner step k."""
        batched = False
        for k, eps in enumerate(train):
            adv = self.advantages(eps, use_bonus) if advantages is None else advantages[k]
            grads = self.inner_gradients(params, eps, adv, batched)
            if first_order:
                grads = {n: g.detach() for n, g in grads.items()}
            params = {n: p - self.s.fast_lr * grads[n] for n, p in params.items()}
            batched = True
        return params

    def adapted_params(self, train: list[Episodes], use_bonus: bool) -> Params:
        """First-order adaptation without a graph (sampling the next inner step / valid episodes)."""
        params = {n: p.detach() for n, p in self.policy.params().items()}
        return {n: p.detach() for n, p in self.adapt(params, train, True, use_bonus).items()}

    # ----- outer objective
    def surrogate(self, train: list[Episodes], valid: Episodes, valid_adv: torch.Tensor, use_bonus: bool,
                  with_graph: bool, old: dict | None = None, train_adv: list[torch.Tensor] | None = None) -> dict:
        """Outer loss and KL (mean over tasks), plus the eta objective when eta is learnable.
        ``old`` holds the detached old distributions (None: this call's own, i.e. ratio 1, KL 0)."""
        params = self.policy.params()
        if not with_graph:
            params = {n: p.detach() for n, p in params.items()}
        first_order = self.s.first_order or not with_graph
        adapted = self.adapt(params, train, first_order, use_bonus, train_adv)
        mu, std = self.policy.dist_per_task(valid.obs, adapted)
        if old is None:
            old = {"mu": mu.detach(), "std": std.detach()}
        logp = gaussian_log_prob(valid.actions, mu, std)
        ratio = torch.exp(logp - gaussian_log_prob(valid.actions, old["mu"], old["std"]))
        loss = -masked_mean(ratio * valid_adv, valid.mask).mean()
        kl = masked_mean(diag_gaussian_kl(old["mu"], old["std"], mu, std), valid.mask).mean()
        out = {"loss": loss, "kl": kl, "old": old}
        if self.s.e_maml:
            loss_pre, out["old"] = self._e_maml_term(params, train[0], valid, valid_adv, old)
            out["loss"] = loss + loss_pre
            out["e_maml_loss"] = loss_pre
        if self.eta is not None and self.eta.learnable and with_graph:
            target = valid.rewards * valid.mask
            if self.s.eta_objective == "return":
                target = discounted_returns(target, valid.mask, self.s.gamma)
            out["eta_loss"] = -masked_mean(ratio * target, valid.mask).mean()
        return out

    def _e_maml_term(self, params: Params, pre: Episodes, valid: Episodes, valid_adv: torch.Tensor, old: dict):
        """E-MAML: the pre-update sampling distribution's dependence on theta. ``trajectory``: each
        task's pre-update log-likelihood ratio weighted by the task's post-update return (centred and
        scaled across tasks); ``elementwise`` (MIME): ratio_pre[t, f] * A_valid[t, f]."""
        mu, std = self.policy.dist(pre.obs, params)
        if "pre_mu" not in old:
            old = {**old, "pre_mu": mu.detach(), "pre_std": std.detach()}
        ratio = torch.exp(gaussian_log_prob(pre.actions, mu, std) - gaussian_log_prob(pre.actions, old["pre_mu"],
                                                                                       old["pre_std"]))
        if self.s.e_maml_mode == "elementwise":
            if ratio.shape != valid_adv.shape:
                raise ValueError("e_maml_mode elementwise pairs pre- and post-update steps: same T and F needed")
            return -masked_mean(ratio * valid_adv, pre.mask).mean(), old
        ret = valid.returns.to(ratio.dtype)
        weight = (ret - ret.mean()) / (ret.std(unbiased=False) + 1e-8) if ret.numel() > 1 else torch.zeros_like(ret)
        return -(masked_mean(ratio, pre.mask) * weight).mean(), old

    # ----- one meta-iteration
    def step(self, train: list[Episodes], valid: Episodes, use_bonus: bool, update_eta: bool) -> dict[str, float]:
        """TRPO on the outer loss (and MIME's eta step when ``update_eta``); returns statistics."""
        if update_eta and (self.eta is None or not self.eta.learnable):
            raise ValueError("update_eta needs a learnable eta (adapt_eta)")
        if update_eta and self.s.first_order:
            raise ValueError("the eta meta-gradient flows through the inner policy-gradient step; with "
                             "first-order adaptation it is zero. Use second-order adaptation for adapt_eta")
        valid_adv = self.advantages(valid, use_bonus).detach()
        eta_adv = update_eta and use_bonus
        train_adv = [self.advantages(e, use_bonus) for e in train]  # keep eta's graph on the first pass
        out = self.surrogate(train, valid, valid_adv, use_bonus, True, train_adv=train_adv)
        old = out["old"]
        stats: dict[str, float] = {}
        if "e_maml_loss" in out:
            stats["e_maml_loss"] = float(out["e_maml_loss"].detach())
        g_eta = None
        if eta_adv:
            (g_eta,) = torch.autograd.grad(out["eta_loss"], [self.eta.logit], retain_graph=True)
        params = list(self.policy.parameters())
        detached_train_adv = [a.detach() for a in train_adv]

        def closure(with_graph: bool):
            res = self.surrogate(train, valid, valid_adv, use_bonus, with_graph, old=old, train_adv=detached_train_adv)
            return res["loss"], res["kl"]

        g = flat_grad(out["loss"], params, retain_graph=True)
        stats.update(trpo_step(params, closure, self.s.trpo, initial=(out["loss"], out["kl"]), grad=g))
        stats["grad_norm"] = float(g.norm())
        if g_eta is not None:
            stats["eta_grad"] = float(g_eta)
            stats["eta_step"] = self.eta.sgd_step(g_eta, self.s.eta_lr)
        return stats


def settings_from_config(cfg) -> MAMLSettings:
    """MAMLSettings from a resolved config (options of config/options_maml.py)."""
    trpo = TRPOSettings(cfg.trpo_max_kl, cfg.trpo_cg_iters, cfg.trpo_cg_damping, cfg.trpo_ls_max_steps,
                        cfg.trpo_ls_backtrack_ratio)
    return replace(MAMLSettings(), fast_lr=cfg.maml_fast_lr, num_steps=cfg.maml_num_inner_steps,
                   first_order=cfg.maml_first_order, gamma=cfg.policy_gamma, gae_lambda=cfg.policy_tau, trpo=trpo,
                   e_maml=cfg.e_maml, e_maml_mode=cfg.e_maml_mode, eta_lr=cfg.eta_lr, eta_objective=cfg.eta_objective)
