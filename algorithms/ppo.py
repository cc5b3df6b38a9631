"""PPO and A2C policy updates (one loss, two settings).

PPO: clipped surrogate, normalised advantages, Huber or squared value loss, optionally
clipped, epochs x random minibatches. A2C: the same loss with one full-batch step and no
ratio clipping (plain -log pi * A). The trainer decides when the VAE trains; this class
never calls back into it (VariBAD's PPO did).
"""
from __future__ import annotations

import itertools
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from algorithms.storage import RolloutStorage


def make_optimiser(params, kind: str, lr: float, eps: float = 1e-8) -> torch.optim.Optimizer:
    """Adam uses the fused kernel: on a 2-core CPU it steps ~3x faster than the default."""
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, eps=eps, fused=True)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, eps=eps, alpha=0.99)
    raise ValueError(f"unknown optimiser {kind!r}")


class PolicyUpdater:
    def __init__(self, policy: nn.Module, algo: str = "ppo", *, lr: float = 7e-4, eps: float = 1e-8,
                 optimiser: str = "adam", epochs: int = 2, minibatches: int = 4, clip: float = 0.1,
                 value_coef: float = 0.5, entropy_coef: float = 0.01, max_grad_norm: float | None = 0.5,
                 huber: bool = True, clipped_value: bool = True, anneal_updates: int | None = None,
                 minibatch_by_env: bool = False):
        if algo not in ("ppo", "a2c"):
            raise ValueError(f"unknown policy algorithm {algo!r}")
        self.policy, self.algo = policy, algo
        self.epochs, self.minibatches = (epochs, minibatches) if algo == "ppo" else (1, 1)
        self.clip, self.value_coef, self.entropy_coef = clip, value_coef, entropy_coef
        self.max_grad_norm, self.huber, self.clipped_value = max_grad_norm, huber, clipped_value
        self.minibatch_by_env = minibatch_by_env
        self.optimiser = make_optimiser(policy.parameters(), optimiser, lr, eps)
        # parameter lists made once (each policy.parameters() walks the module tree)
        self._policy_params = list(policy.parameters())
        self._params = [p for group in self.optimiser.param_groups for p in group["params"]]
        self.scheduler = None
        if anneal_updates:
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimiser, lambda k: max(0.0, 1.0 - k / float(anneal_updates)))

    def update(self, storage: RolloutStorage,
               recompute_latent: Callable[[torch.Tensor | None], torch.Tensor] | None = None,
               extra_loss: Callable[[], torch.Tensor] | None = None,
               extra_optimiser: torch.optim.Optimizer | None = None,
               extra_params: list | None = None, extra_max_grad_norm: float | None = None,
               minibatch_loss: Callable[[dict], torch.Tensor] | None = None) -> dict:
        """One policy update from a full rollout.

        recompute_latent(envs): latents [T, len(envs), d] of those env copies (None: all) WITH
        gradients (RL2: the RL loss trains the encoder); called once per minibatch because each
        backward frees the graph. With ``minibatch_by_env`` a minibatch is a set of whole copies,
        so only their latents are recomputed (the work per epoch drops from minibatches x N
        trajectories to N).
        extra_loss / extra_optimiser / extra_params: an added loss (e.g. the VAE loss) and
        the optimiser of the parameters it reaches (the encoder), stepped together.
        minibatch_loss: an added loss of the minibatch's inputs (e.g. task-inference
        supervision on the recomputed latents); its mean is reported as ``aux_loss``.
        """
        T, N = storage.num_steps, storage.num_envs
        flat = lambda x: x.reshape(T * N, *x.shape[2:])  # noqa: E731
        inputs = {k: flat(v[:-1]) for k, v in storage.inputs.items()}
        actions, old_logp = flat(storage.actions), flat(storage.log_probs)
        old_values, returns = flat(storage.values[:-1]), flat(storage.returns)
        adv = returns - old_values
        adv = (adv - adv.mean()) / (adv.std() + 1e-5)
        # the per-sample scalars as rows of one tensor: one gather per minibatch (rows of the
        # gathered [4, B] are contiguous, so every op below sees the same tensors as before)
        per_sample = torch.stack([old_logp, adv, old_values, returns])
        # running sums of (value_loss, action_loss, dist_entropy, approx_kl, clipfrac): one
        # float32 add per minibatch per entry, in the same order as separate sums (bit-identical)
        sums = torch.zeros(5, device=returns.device)
        aux_sum = None
        n_updates = 0
        by_env = self.minibatch_by_env and recompute_latent is not None
        steps = torch.arange(T, device=returns.device)[:, None] * N
        # minibatches evaluated on rows of inputs prepared once (normalised; bit for bit the same
        # values and gradients), unless the inputs change per minibatch or a loss needs them raw
        fast = None
        if recompute_latent is None and minibatch_loss is None and hasattr(self.policy, "evaluator"):
            fast = self.policy.evaluator()
        rows_of = fast[0](inputs) if fast is not None else inputs
        for _ in range(self.epochs):
            perm = torch.randperm(N if by_env else T * N, device=returns.device)
            chunks = perm.chunk(self.minibatches)
            if fast is not None:
                # one gather per epoch; the minibatches are then contiguous slices of it, the same
                # rows (and, for the per-sample scalars, the same contiguous 1-D tensors) as before
                split = lambda x, dim=0, perm=perm: x.index_select(dim, perm).chunk(self.minibatches, dim)  # noqa: E731
                epoch_rows = {k: split(v) for k, v in rows_of.items()}
                epoch_per_sample, epoch_actions = split(per_sample, 1), split(actions)
            for i, chunk in enumerate(chunks):
                idx = (steps + chunk[None]).reshape(-1) if by_env else chunk  # flat (t, copy) indices
                if fast is not None:
                    mb = {k: v[i] for k, v in epoch_rows.items()}
                    mb_old_logp, mb_adv, mb_old_values, mb_returns = epoch_per_sample[i]
                    value, logp, entropy = fast[1](mb, epoch_actions[i])
                else:
                    mb = {k: v.index_select(0, idx) for k, v in rows_of.items()}
                    if by_env:
                        mb["latent"] = recompute_latent(chunk).reshape(T * len(chunk), -1)
                    elif recompute_latent is not None:
                        mb["latent"] = flat(recompute_latent(None))[idx]
                    mb_old_logp, mb_adv, mb_old_values, mb_returns = per_sample.index_select(1, idx)
                    value, logp, entropy = self.policy.evaluate(mb, actions.index_select(0, idx))
                loss, row = self._loss(value, logp, entropy, mb_old_logp, mb_adv, mb_old_values, mb_returns)
                if extra_loss is not None:
                    loss = loss + extra_loss()
                if minibatch_loss is not None:
                    aux = minibatch_loss(mb)
                    loss = loss + aux
                    aux_sum = aux.detach() if aux_sum is None else aux_sum + aux.detach()
                for p in self._params:  # zero_grad(set_to_none=True) without its per-call overhead
                    p.grad = None
                if extra_optimiser is not None:
                    extra_optimiser.zero_grad(set_to_none=True)
                loss.backward()
                if self.max_grad_norm:
                    nn.utils.clip_grad_norm_(self._policy_params, self.max_grad_norm)
                if extra_params and extra_max_grad_norm:
                    nn.utils.clip_grad_norm_(extra_params, extra_max_grad_norm)
                self.optimiser.step()
                if extra_optimiser is not None:
                    extra_optimiser.step()
                sums += row
                n_updates += 1
        return self._finish(sums.tolist(), n_updates, None if aux_sum is None else float(aux_sum))

    def _loss(self, value, logp, entropy, old_logp, adv, old_values, returns):
        """The minibatch loss and its row of stats (value_loss, action_loss, dist_entropy,
        approx_kl, clipfrac); inputs [..., B]: with a leading member dimension, one loss and one
        stats column per member."""
        ratio = torch.exp(logp - old_logp)
        if self.algo == "ppo":
            surr = torch.min(ratio * adv, ratio.clamp(1 - self.clip, 1 + self.clip) * adv)
            action_loss = -surr.mean(-1)
        else:
            action_loss = -(logp * adv).mean(-1)
        value_loss = self._value_loss(value, old_values, returns)
        entropy_mean = entropy.mean(-1)
        loss = self.value_coef * value_loss + action_loss - self.entropy_coef * entropy_mean
        with torch.no_grad():
            row = torch.stack([value_loss, action_loss, entropy_mean, (old_logp - logp).mean(-1),
                               ((ratio - 1).abs() > self.clip).float().mean(-1)])
        return loss, row

    def _finish(self, sums: list, n_updates: int, aux: float | None = None) -> dict:
        """The update's stats from the summed rows; the learning-rate schedule steps."""
        stats = dict(zip(("value_loss", "action_loss", "dist_entropy", "approx_kl", "clipfrac"), sums))
        if aux is not None:
            stats["aux_loss"] = aux
        if self.scheduler is not None:
            self.scheduler.step()
        out = {k: v / n_updates for k, v in stats.items()}
        out["sum"] = self.value_coef * out["value_loss"] + out["action_loss"] - self.entropy_coef * out["dist_entropy"]
        return out

    def _value_loss(self, value, old_value, ret):
        err = F.smooth_l1_loss if self.huber else F.mse_loss
        if not self.clipped_value:
            return (0.5 if not self.huber else 1.0) * err(value, ret, reduction="none").mean(-1)
        clipped = old_value + (value - old_value).clamp(-self.clip, self.clip)
        a = err(value, ret, reduction="none")
        b = err(clipped, ret, reduction="none")
        return (0.5 if not self.huber else 1.0) * torch.max(a, b).mean(-1)

    def _prepared(self, storage: RolloutStorage):
        """The fast path's rows for one update: (prepared inputs, per-sample scalars [4, T*N]:
        old log-probs, normalised advantages, old values, returns, and actions), all [T*N, ...]."""
        T, N = storage.num_steps, storage.num_envs
        flat = lambda x: x.reshape(T * N, *x.shape[2:])  # noqa: E731
        old_values, returns = flat(storage.values[:-1]), flat(storage.returns)
        adv = returns - old_values
        adv = (adv - adv.mean()) / (adv.std() + 1e-5)
        rows = self.policy.evaluator()[0]({k: flat(v[:-1]) for k, v in storage.inputs.items()})
        return rows, torch.stack([flat(storage.log_probs), adv, old_values, returns]), flat(storage.actions)


    def set_lr(self, lr: float) -> None:
        """A new base learning rate (e.g. on resume); with annealing, the schedule continues from it."""
        if self.scheduler is not None:
            self.scheduler.base_lrs = [lr for _ in self.scheduler.base_lrs]
            factor = self.scheduler.lr_lambdas[0](self.scheduler.last_epoch)
        else:
            factor = 1.0
        for group in self.optimiser.param_groups:
            group["lr"] = lr * factor
            if "initial_lr" in group:
                group["initial_lr"] = lr

    def state_dict(self) -> dict:
        return {"optimiser": self.optimiser.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None}

    def load_state_dict(self, state: dict) -> None:
        self.optimiser.load_state_dict(state["optimiser"])
        if self.scheduler and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])


def update_members(updaters: list[PolicyUpdater], storages: list[RolloutStorage], evaluate,
                   generators: list[torch.Generator]) -> list[dict]:
    """``PolicyUpdater.update`` (plain PPO/A2C, the fast path: no extra losses, no latents
    recomputed) of S members at once -- the runs of a ``--num_seeds`` run. Per minibatch ONE
    forward and backward for all members (``evaluate``: ``models.policy.members_evaluator``),
    then each member's own clipping and optimiser step. Member s draws its minibatch permutations
    from ``generators[s]`` (what its own run draws from its global RNG); its gradient is that of
    its own loss (the sum of the members' losses is backpropagated; no op mixes members)."""
    u0, S = updaters[0], len(updaters)
    prepared = [u._prepared(s) for u, s in zip(updaters, storages)]
    rows = {k: torch.stack([p[0][k] for p in prepared]) for k in prepared[0][0]}   # [S, T*N, d]
    per_sample = torch.stack([p[1] for p in prepared], 1)                       # [4, S, T*N]
    actions = torch.stack([p[2] for p in prepared])                             # [S, T*N, ...]
    n, device = actions.shape[1], actions.device
    sums = torch.zeros(5, S, device=device)
    n_updates = 0
    merged = MergedSteps.of([u.optimiser for u in updaters], [u._policy_params for u in updaters],
                            [u.max_grad_norm for u in updaters])
    for _ in range(u0.epochs):
        perm = torch.stack([torch.randperm(n, generator=g, device=device) for g in generators])  # [S, T*N]

        def take(x, dim, perm=perm):  # the rows of every member's permutation, split into minibatches along dim
            idx = perm.view(*(1,) * (dim - 1), S, n, *(1,) * (x.dim() - dim - 1)).expand_as(x)
            return x.gather(dim, idx).chunk(u0.minibatches, dim)
        epoch_rows = {k: take(v, 1) for k, v in rows.items()}
        epoch_per_sample, epoch_actions = take(per_sample, 2), take(actions, 1)
        for i in range(len(epoch_actions)):
            value, logp, entropy = evaluate({k: v[i] for k, v in epoch_rows.items()}, epoch_actions[i])
            loss, row = u0._loss(value, logp, entropy, *epoch_per_sample[i])
            for u in updaters:
                for p in u._params:
                    p.grad = None
            loss.sum().backward()
            if merged is None:
                for u in updaters:
                    if u.max_grad_norm:
                        nn.utils.clip_grad_norm_(u._policy_params, u.max_grad_norm)
                    u.optimiser.step()
            else:
                merged.step()
            sums += row
            n_updates += 1
    return [u._finish(col, n_updates) for u, col in zip(updaters, sums.t().tolist())]


class MergedSteps:
    """S members' gradient clipping and Adam steps (the runs of a --num_seeds run) as one foreach
    norm, one foreach multiply and one fused Adam call for all members instead of S of each: the
    same numbers as member by member (every op is per tensor; a member's clipping factor comes
    from its own norms, as ``clip_grad_norm_`` computes it). Built per update around the members'
    own optimiser states, so each member's optimiser (its checkpoint, its resume) stays its own."""

    def __init__(self, optimisers: list[torch.optim.Optimizer], params: list[list], max_norm: float | None):
        self.max_norm, self.params, self.optimisers = max_norm, params, optimisers
        first = optimisers[0]  # its group's hyperparameters (a scheduler's "initial_lr" is not one)
        group = {k: v for k, v in first.param_groups[0].items() if k in first.defaults}
        merged = torch.optim.Adam([p for ps in params for p in ps], **group)
        for opt, ps in zip(optimisers, params):
            for p in ps:
                merged.state[p] = opt.state[p]  # the same dicts: Adam fills and steps them in place
        self.optimiser = merged

    @staticmethod
    def of(optimisers: list[torch.optim.Optimizer], params: list[list], max_norms: list) -> "MergedSteps | None":
        """None unless every member runs fused Adam over ``params`` (one parameter group) with the
        same hyperparameters, learning rate included, and clips by the same norm (or none does)."""
        def hyper(opt):
            return {k: v for k, v in opt.param_groups[0].items() if k != "params"}
        first = optimisers[0]
        if not (isinstance(first, torch.optim.Adam) and first.defaults.get("fused")):
            return None
        if any(type(o) is not type(first) or len(o.param_groups) != 1 or hyper(o) != hyper(first)
               or list(map(id, o.param_groups[0]["params"])) != list(map(id, ps)) or n != max_norms[0]
               for o, ps, n in zip(optimisers, params, max_norms)):
            return None
        return MergedSteps(optimisers, params, max_norms[0])

    @torch.no_grad()
    def step(self) -> None:
        if self.max_norm:
            grads = [[p.grad for p in ps if p.grad is not None] for ps in self.params]
            flat = [g for gs in grads for g in gs]
            norms = torch._foreach_norm(flat, 2.0)
            if len({len(gs) for gs in grads}) == 1:  # each member's total norm as clip_grad_norm_ computes it
                totals = torch.linalg.vector_norm(torch.stack(norms).view(len(grads), -1), 2.0, dim=1)
            else:
                at = [0, *itertools.accumulate(len(gs) for gs in grads)]
                totals = torch.stack([torch.linalg.vector_norm(torch.stack(norms[i:j]), 2.0) for i, j in zip(at, at[1:])])
            coef = torch.clamp(self.max_norm / (totals + 1e-6), max=1.0)
            torch._foreach_mul_(flat, [coef[s] for s, gs in enumerate(grads) for _ in gs])
        self.optimiser.step()
        for opt in self.optimisers:  # what a LR scheduler checks to know its optimiser stepped (else it warns)
            opt._opt_called = True
