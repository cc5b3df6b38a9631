"""Actor-critic policy conditioned on any of (state, latent, belief, task).

Each input part gets an optional running normaliser and an optional Linear+activation
embedding; the parts are concatenated and fed to an actor-critic *body*. The default body
is two MLPs (actor, critic); a hypernetwork body (models/hypernet.py) has the same
``forward(base_input, cond) -> (actor_out, value)`` signature and takes ``cond`` (the
embedded latent) separately from the base input.

Actions: Categorical (logits) or diagonal Gaussian with a state-independent log-std,
optionally tanh on the mean (``norm_actions_pre_sampling``) or a tanh-squashed sample
(``norm_actions_post_sampling``, with the change-of-variables log-prob). Storage keeps the
*raw* (pre-squash) action so log-probs are exact; ``act`` also returns the env action.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import nn
import torch.nn.functional as F

from models import members
from models.common import FUNCTIONAL, FeatureExtractor, init_linear
from utils.running_stats import RunningMeanStd

PARTS = ("state", "latent", "belief", "task")


class MLPActorCritic(nn.Module):
    """Separate actor and critic MLPs; ``cond`` (if any) is concatenated to the input."""

    def __init__(self, base_in_dim: int, cond_dim: int, hidden_layers: list[int], actor_out_dim: int,
                 activation: str = "tanh", init: str = "normc", actor_head_gain: float = 0.01):
        super().__init__()
        gain = nn.init.calculate_gain(activation.replace("-", "_"))
        sizes = [base_in_dim + cond_dim] + list(hidden_layers)
        self.actor = nn.ModuleList(init_linear(nn.Linear(a, b), init, gain) for a, b in zip(sizes, sizes[1:]))
        self.critic = nn.ModuleList(init_linear(nn.Linear(a, b), init, gain) for a, b in zip(sizes, sizes[1:]))
        self.actor_head = init_linear(nn.Linear(sizes[-1], actor_out_dim), init, actor_head_gain)
        self.value_head = init_linear(nn.Linear(sizes[-1], 1), init, 1.0)
        self.act = FUNCTIONAL[activation]

    def forward(self, base_input: torch.Tensor, cond: torch.Tensor | None = None):
        # functional calls: this runs every env step and module-call overhead adds up
        x = base_input if cond is None else torch.cat([base_input, cond], -1)
        a = c = x
        for la, lc in zip(self.actor, self.critic):
            a = self.act(F.linear(a, la.weight, la.bias))
            c = self.act(F.linear(c, lc.weight, lc.bias))
        return (F.linear(a, self.actor_head.weight, self.actor_head.bias),
                F.linear(c, self.value_head.weight, self.value_head.bias))

    def forward_actor(self, base_input: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Only the actor output (acting needs no value)."""
        a = base_input if cond is None else torch.cat([base_input, cond], -1)
        for la in self.actor:
            a = self.act(F.linear(a, la.weight, la.bias))
        return F.linear(a, self.actor_head.weight, self.actor_head.bias)


class ActResult(NamedTuple):
    action: torch.Tensor      # [B] long or [B, A] raw (pre-squash)
    env_action: torch.Tensor  # what the env gets


class Policy(nn.Module):
    def __init__(self, input_dims: dict[str, int], num_actions: int, discrete: bool, layers: list[int],
                 activation: str = "tanh", init: str = "normc", embed_dims: dict[str, int | None] | None = None,
                 normalise: dict[str, bool] | None = None, init_std: float = 1.0,
                 tanh_mean: bool = False, tanh_squash: bool = False,
                 body_fn: Callable[[int, int], nn.Module] | None = None, cond_part: str | None = None,
                 task_substitutes_latent: bool = False):
        """input_dims: sizes of the parts the policy sees (only those given are used).
        body_fn(base_dim, cond_dim) builds the actor-critic body (default: MLPActorCritic).
        cond_part: the part fed to the body as ``cond`` (hypernetwork input) instead of the
        base input; None concatenates everything into the base input.
        task_substitutes_latent: task-inference supervision (TI): the task embedding is not a
        base input of its own but takes the latent's place while ``use_task`` is set."""
        super().__init__()
        self.parts = [p for p in PARTS if input_dims.get(p)]
        if not self.parts:
            raise ValueError("the policy sees no input: pass at least one of state/latent/belief/task")
        embed_dims, normalise = embed_dims or {}, normalise or {}
        self.discrete, self.tanh_mean, self.tanh_squash = discrete, tanh_mean, tanh_squash
        self.cond_part = cond_part
        self.normalisers = nn.ModuleDict({p: RunningMeanStd((input_dims[p],)) for p in self.parts if normalise.get(p)})
        self.embedders = nn.ModuleDict({p: FeatureExtractor(input_dims[p], embed_dims[p], activation)
                                        for p in self.parts if embed_dims.get(p)})
        sizes = {p: embed_dims.get(p) or input_dims[p] for p in self.parts}
        self.task_substitutes_latent, self.use_task = task_substitutes_latent, False
        if task_substitutes_latent:
            if sizes.get("task") != sizes.get("latent"):
                raise ValueError("the task embedding can replace the latent only if both have the same size")
            self.parts_in = [p for p in self.parts if p != "task"]
        else:
            self.parts_in = list(self.parts)
        base_dim = sum(s for p, s in sizes.items() if p != cond_part and p in self.parts_in)
        cond_dim = sizes[cond_part] if cond_part else 0
        if cond_part is not None and cond_part not in self.parts:
            raise ValueError(f"the hypernetwork input {cond_part!r} is not among the policy inputs {self.parts}")
        self.body = body_fn(base_dim, cond_dim) if body_fn is not None else MLPActorCritic(
            base_dim, cond_dim, layers, num_actions, activation, init, 0.01 if discrete else 1.0)
        if not discrete:
            self.logstd = nn.Parameter(torch.full((num_actions,), math.log(init_std)))

    # ---- inputs -------------------------------------------------------------------------
    def embed(self, part: str, x: torch.Tensor) -> torch.Tensor:
        if part in self.normalisers:
            x = self.normalisers[part].normalise(x)
        return self.embedders[part](x) if part in self.embedders else x

    def _features(self, inputs: dict[str, torch.Tensor]):
        feats = {p: self.embed(p, inputs[p]) for p in self.parts_in}
        if self.use_task:  # TI warm-up: the policy conditions on its own task embedding
            feats["latent"] = self.embed("task", inputs["task"])
        base = torch.cat([feats[p] for p in self.parts_in if p != self.cond_part], -1)
        return base, (feats[self.cond_part] if self.cond_part else None)

    @torch.no_grad()
    def update_normalisers(self, inputs: dict[str, torch.Tensor]) -> None:
        for p, rms in self.normalisers.items():
            rms.update(inputs[p])

    def forward(self, inputs: dict[str, torch.Tensor]):
        actor_out, value = self.body(*self._features(inputs))
        return actor_out, value.squeeze(-1)

    # ---- distributions (written out: torch.distributions adds validation overhead) -----
    def log_prob(self, actor_out, action, logstd=None):
        """log pi(action) [...] of actor outputs [..., A]; ``logstd``: the parameter to use (default
        this policy's; ``members_evaluator`` passes the members' stacked as [S, 1, A])."""
        if self.discrete:
            return F.log_softmax(actor_out, -1).gather(-1, action.long().reshape(*actor_out.shape[:-1], 1)).squeeze(-1)
        mean = torch.tanh(actor_out) if self.tanh_mean else actor_out
        logstd = (self.logstd if logstd is None else logstd).clamp_min(math.log(1e-6))
        lp = (-0.5 * ((action - mean) / logstd.exp()).pow(2) - logstd - 0.5 * math.log(2 * math.pi)).sum(-1)
        if self.tanh_squash:  # change of variables for a = tanh(u)
            lp = lp - (2 * (math.log(2) - action - F.softplus(-2 * action))).sum(-1)
        return lp

    def _entropy(self, actor_out, logstd=None):
        if self.discrete:
            logp = F.log_softmax(actor_out, -1)
            return -(logp.exp() * logp).sum(-1)
        logstd = (self.logstd if logstd is None else logstd).clamp_min(math.log(1e-6))
        # Gaussian entropy (for tanh-squashed actions this is the usual pre-squash proxy)
        return (logstd + 0.5 * math.log(2 * math.pi * math.e)).sum(-1).expand(actor_out.shape[:-1])

    def act(self, inputs: dict[str, torch.Tensor], deterministic: bool = False) -> ActResult:
        """Sample (or take the mode of) an action. Only the actor runs: values and
        log-probs of a whole rollout are computed afterwards in one batch (``evaluate``)."""
        base, cond = self._features(inputs)
        actor_out = self.body.forward_actor(base, cond)
        if self.discrete:
            if deterministic:
                action = actor_out.argmax(-1)
            else:  # inverse-CDF sampling: cheaper than torch.multinomial for small batches
                u = torch.rand(actor_out.shape[0], 1, device=actor_out.device)
                cdf = F.softmax(actor_out, -1).cumsum(-1)
                action = (cdf < u).sum(-1).clamp_max(actor_out.shape[-1] - 1)
            return ActResult(action, action)
        mean = torch.tanh(actor_out) if self.tanh_mean else actor_out
        if deterministic:
            action = mean
        else:
            action = mean + torch.randn_like(mean) * self.logstd.clamp_min(math.log(1e-6)).exp()
        env_action = torch.tanh(action) if self.tanh_squash else action
        return ActResult(action, env_action)

    def acting(self) -> Callable[..., ActResult]:
        """``act`` as one function for the per-env-step path of ONE rollout: same ops on the
        same values in the same order and the same RNG draws, so bit for bit equal, with the
        parameters and normaliser statistics read once, no module calls or dicts per step, the
        normalised parts that are not embedded normalised as one concatenated tensor (the
        elementwise ops see the same numbers) and the action std computed once.

        The returned function holds the normaliser statistics and the std as they are now: take
        a new one after any update (the trainer takes one per rollout). Policies it does not
        mirror (hypernetwork bodies, task-inference warm-up) get ``act`` itself."""
        return acting_fn([self]) or self.act

    def evaluator(self):
        """(prepare, evaluate) for the minibatches of one policy update, or None where not
        mirrored (as ``acting``). ``prepare(inputs)`` runs once per update on all rows: the
        normalised parts (the normalisers do not change during an update; normalising is
        elementwise, so rows normalised together or apart are the same numbers), concatenated
        into one base input where no part is embedded. ``evaluate(rows, actions)``, on rows of
        the prepared tensors, returns what ``self.evaluate`` returns on the same rows of the
        inputs, bit for bit, with the same autograd graph (same ops in the same order on the
        same parameters: equal gradients), without module calls."""
        body = self.body
        if not mirrored(self):
            return None
        plan = [(p, self.normalisers[p] if p in self.normalisers else None, self.embedders[p] if p in self.embedders else None)
                for p in self.parts_in]
        if all(emb is None for _, _, emb in plan):
            def prepare(inputs):
                parts = [inputs[p] if rms is None else rms.normalise(inputs[p]) for p, rms, _ in plan]
                return {"base": parts[0] if len(parts) == 1 else torch.cat(parts, -1)}

            def features(rows):
                return rows["base"]
        else:
            steps = [(p, None if emb is None else (emb.fc.weight, emb.fc.bias, emb.act)) for p, _, emb in plan]

            def prepare(inputs):
                return {p: inputs[p] if rms is None else rms.normalise(inputs[p]) for p, rms, _ in plan}

            def features(rows):
                feats = [rows[p] if emb is None else emb[2](F.linear(rows[p], emb[0], emb[1])) for p, emb in steps]
                return feats[0] if len(feats) == 1 else torch.cat(feats, -1)

        layers = [((la.weight, la.bias), (lc.weight, lc.bias)) for la, lc in zip(body.actor, body.critic)]
        heads = (body.actor_head.weight, body.actor_head.bias, body.value_head.weight, body.value_head.bias)
        act_fn, linear = body.act, F.linear

        def evaluate(rows: dict[str, torch.Tensor], actions: torch.Tensor):
            a = c = features(rows)
            for (wa, ba), (wc, bc) in layers:
                a = act_fn(linear(a, wa, ba))
                c = act_fn(linear(c, wc, bc))
            actor_out, value = linear(a, heads[0], heads[1]), linear(c, heads[2], heads[3])
            return value.squeeze(-1), self.log_prob(actor_out, actions), self._entropy(actor_out)
        return prepare, evaluate

    def evaluate(self, inputs: dict[str, torch.Tensor], actions: torch.Tensor):
        """(value [B], log_prob [B], entropy [B]) of stored raw actions, with gradients."""
        actor_out, value = self(inputs)
        return value, self.log_prob(actor_out, actions), self._entropy(actor_out)


def mirrored(policy: Policy) -> bool:
    """Whether ``acting_fn`` / ``Policy.evaluator`` mirror this policy (MLP body, no hypernetwork
    input, no task-inference warm-up, no zero-size embedding)."""
    if type(policy.body) is not MLPActorCritic or policy.cond_part is not None or policy.use_task:
        return False
    return not any(p in policy.embedders and policy.embedders[p].fc is None for p in policy.parts_in)


def members_evaluator(policies: list[Policy]):
    """The ``evaluate`` of ``Policy.evaluator`` for S policies of one architecture at once (the
    members of a ``--num_seeds`` run), WITH gradients to every member's own parameters: rows
    [S, B, .] of the members' prepared inputs and actions [S, B, ...] -> (value, log-prob,
    entropy), each [S, B]. The parameters are stacked at every call (they change after each
    optimiser step). Same mathematics as each member's own; batched matmuls round differently."""
    first = policies[0]
    stack = lambda get: torch.stack([get(p) for p in policies])  # noqa: E731
    linear = lambda x, w, b: torch.baddbmm(b[:, None], x, w.transpose(1, 2))  # noqa: E731
    embedded = [(p, p in first.embedders) for p in first.parts_in]
    plain = not any(e for _, e in embedded)
    act_fn, n_layers = first.body.act, len(first.body.actor)

    def layer(get_module):
        return stack(lambda p: get_module(p).weight), stack(lambda p: get_module(p).bias)

    def evaluate(rows: dict[str, torch.Tensor], actions: torch.Tensor):
        if plain:
            a = c = rows["base"]
        else:
            feats = [first.embedders[name].act(linear(rows[name], *layer(lambda p, name=name: p.embedders[name].fc)))
                     if emb else rows[name] for name, emb in embedded]
            a = c = feats[0] if len(feats) == 1 else torch.cat(feats, -1)
        for i in range(n_layers):
            a = act_fn(linear(a, *layer(lambda p, i=i: p.body.actor[i])))
            c = act_fn(linear(c, *layer(lambda p, i=i: p.body.critic[i])))
        actor_out = linear(a, *layer(lambda p: p.body.actor_head))
        value = linear(c, *layer(lambda p: p.body.value_head)).squeeze(-1)
        logstd = None if first.discrete else stack(lambda p: p.logstd)[:, None]
        return value, first.log_prob(actor_out, actions, logstd), first._entropy(actor_out, logstd)
    return evaluate


def acting_fn(policies: list[Policy], generators: list[torch.Generator] | None = None):
    """``Policy.acting`` of one policy, or of S policies of the same architecture at once
    (the members of a ``--num_seeds`` run: inputs [S, N, d] -> actions [S, N, ...], every
    member's numbers bit for bit those of its own ``acting``; member s draws its noise from
    ``generators[s]``, which holds what its global RNG would). None where not mirrored."""
    if not all(mirrored(p) for p in policies):
        return None
    first, ops = policies[0], members.ops_for(len(policies))
    pick, row, linear = ops.pick, ops.row, ops.linear
    # parts in the order the base input concatenates them: (name, [normalisers] or None, [embedders] or None)
    plan = [(p, [m.normalisers[p] for m in policies] if p in first.normalisers else None,
             [m.embedders[p] for m in policies] if p in first.embedders else None) for p in first.parts_in]
    # without embedders, the normalised parts are normalised after one cat (same elementwise ops)
    if all(embs is None for _, _, embs in plan) and all(rmss is not None for _, rmss, _ in plan):
        names = [p for p, _, _ in plan]
        if len(plan) == 1:
            mean, inv_std = (row(pick([r.mean for r in plan[0][1]])), row(pick([r.inv_std for r in plan[0][1]])))
        else:
            mean = row(torch.cat([pick([r.mean for r in rmss]) for _, rmss, _ in plan], -1)).detach()
            inv_std = row(torch.cat([pick([r.inv_std for r in rmss]) for _, rmss, _ in plan], -1)).detach()

        def features(inputs):
            x = inputs[names[0]] if len(names) == 1 else torch.cat([inputs[p] for p in names], -1)
            return (x - mean) * inv_std
    else:
        steps = [(p, None if rmss is None else (row(pick([r.mean for r in rmss])), row(pick([r.inv_std for r in rmss]))),
                  None if embs is None else (pick([e.fc.weight for e in embs]), pick([e.fc.bias for e in embs]), embs[0].act))
                 for p, rmss, embs in plan]

        def features(inputs):
            feats = []
            for p, norm, emb in steps:
                x = inputs[p]
                if norm is not None:
                    x = (x - norm[0]) * norm[1]
                if emb is not None:
                    x = emb[2](linear(x, emb[0], emb[1]))
                feats.append(x)
            return feats[0] if len(feats) == 1 else torch.cat(feats, -1)

    bodies = [m.body for m in policies]
    layers = [(pick([b.actor[i].weight for b in bodies]), pick([b.actor[i].bias for b in bodies]))
              for i in range(len(first.body.actor))]
    head_w, head_b = pick([b.actor_head.weight for b in bodies]), pick([b.actor_head.bias for b in bodies])
    act_fn = first.body.act

    def actor(inputs):
        a = features(inputs)
        for w, b in layers:
            a = act_fn(linear(a, w, b))
        return linear(a, head_w, head_b)

    if generators is None:
        rand = lambda out: torch.rand(out.shape[0], 1, device=out.device)  # noqa: E731
        randn = torch.randn_like
    else:  # member s draws what its own run would draw from its global RNG
        rand = lambda out: torch.stack([torch.rand(out.shape[1], 1, generator=g, device=out.device)  # noqa: E731
                                        for g in generators])
        randn = lambda mean: torch.stack([torch.randn(mean.shape[1:], generator=g, device=mean.device,  # noqa: E731
                                                      dtype=mean.dtype) for g in generators])

    if first.discrete:
        def act(inputs: dict[str, torch.Tensor], deterministic: bool = False) -> ActResult:
            actor_out = actor(inputs)
            if deterministic:
                action = actor_out.argmax(-1)
            else:
                u = rand(actor_out)
                cdf = F.softmax(actor_out, -1).cumsum(-1)
                action = (cdf < u).sum(-1).clamp_max(actor_out.shape[-1] - 1)
            return ActResult(action, action)
        return act

    std = row(pick([m.logstd for m in policies])).detach().clamp_min(math.log(1e-6)).exp()
    tanh_mean, tanh_squash = first.tanh_mean, first.tanh_squash

    def act(inputs: dict[str, torch.Tensor], deterministic: bool = False) -> ActResult:
        mean = actor(inputs)
        if tanh_mean:
            mean = torch.tanh(mean)
        action = mean if deterministic else mean + randn(mean) * std
        return ActResult(action, torch.tanh(action) if tanh_squash else action)
    return act
