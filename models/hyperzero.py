"""HyperZero (Rezaei-Shoshtari et al., AAAI 2023) and its baselines: context -> policy (and Q).

Meta-embedding (context c -> z, 256): Linear(c, 64), 2 ResBlock(64), Linear(64, 128),
2 ResBlock(128), Linear(128, 256), 2 ResBlock(256); ResBlock(x) = x + Linear(ReLU(Linear(ReLU(x)))).
Embedding weights U(+-1 / (2 sqrt(fan_in))), biases 0.

``HyperZero``: heads map z to all weights of small generated networks, one set per sample,
evaluated with ``bmm``:
    policy  state -> 256 ReLU -> action, tanh
    Q       [state, action] -> 256 ReLU -> 1            (``use_q``; one shared z for both)
Each generated layer (in -> out) has a weight head Linear(z, in * out) (reshaped to [out, in])
and a bias head Linear(z, out). First-layer heads U(+-0.05), last-layer heads U(+-0.008), head
biases 0.

Baselines: ``MLPSolution`` ("mlp_policy" / "mlp_rl" / "mlp_rl_td"): the same meta-embedding
concatenated to the state (and action) -> 256 ReLU -> action (tanh) / Q.

A training batch holds few distinct contexts (one per expert), so ``generate`` runs the
embedding and the heads once per distinct context row and gathers the result back to the batch
(``per_unique_context``): the same function and gradients as per sample, up to float rounding,
at a fraction of the cost (the heads dominate HyperZero's compute).

Every model: ``generate(context) -> params`` (the generated weights, or z for the MLPs),
``policy(params, state)``, ``q(params, state, action)`` (if ``has_q``) and
``act(context, state)``. ``losses`` computes HyperZero's objective:

    L = MSE(pi(s), a*) + value_weight MSE(Q(s, a*), Q*) + td_weight MSE(Q*, r + gamma d Q(s', pi(s')))

with pi(s') under no_grad (the gradient flows into Q at the next state). The seed code used
d = the DMC time-step discount (1) without gamma, i.e. gamma = 1 in the TD target while the
experts' Q* were learned with gamma = 0.99; we use the experts' gamma (``gamma`` argument).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

APPROXIMATORS = ("hyperzero", "hyperzero_without_td", "hyperzero_without_q", "mlp_policy", "mlp_rl", "mlp_rl_td")


def _uniform_(layer: nn.Linear, bound: float) -> nn.Linear:
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.zeros_(layer.bias)
    return layer


def _embed_linear(fan_in: int, fan_out: int) -> nn.Linear:
    return _uniform_(nn.Linear(fan_in, fan_out), 1.0 / (2.0 * math.sqrt(fan_in)))


def per_unique_context(fn, context: torch.Tensor):
    """``fn(context)`` computed once per distinct row of ``context`` [B, c] and gathered back to
    [B, ...]; ``fn`` returns a tensor or nested lists / tuples / dicts of tensors with a leading
    batch dimension."""
    uniq, inverse = torch.unique(context, dim=0, return_inverse=True)
    if len(uniq) == len(context):
        return fn(context)

    def gather(x):
        if isinstance(x, torch.Tensor):
            return x[inverse]
        if isinstance(x, dict):
            return {k: gather(v) for k, v in x.items()}
        return type(x)(gather(v) for v in x)

    return gather(fn(uniq))


class ResBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.fc1, self.fc2 = _embed_linear(dim, dim), _embed_linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(F.relu(self.fc1(F.relu(x))))


class MetaEmbedding(nn.Module):
    """context [B, c] -> z [B, widths[-1]]."""

    def __init__(self, context_dim: int, widths: tuple = (64, 128, 256), blocks: int = 2):
        super().__init__()
        layers, prev = [], context_dim
        for w in widths:
            layers.append(_embed_linear(prev, w))
            layers.extend(ResBlock(w) for _ in range(blocks))
            prev = w
        self.net = nn.Sequential(*layers)
        self.dim = prev

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return self.net(context)


class GeneratedMLP(nn.Module):
    """Heads that generate a one-hidden-layer MLP (in -> hidden ReLU -> out) per sample."""

    def __init__(self, embed_dim: int, in_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.shapes = [(hidden, in_dim), (out_dim, hidden)]
        bounds = [0.05, 0.008]
        self.w_heads = nn.ModuleList(_uniform_(nn.Linear(embed_dim, o * i), b) for (o, i), b in zip(self.shapes, bounds))
        self.b_heads = nn.ModuleList(_uniform_(nn.Linear(embed_dim, o), b) for (o, _), b in zip(self.shapes, bounds))

    def generate(self, z: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """[(W [B, out, in], b [B, out]) per layer]."""
        return [(wh(z).view(-1, o, i), bh(z)) for (o, i), wh, bh in zip(self.shapes, self.w_heads, self.b_heads)]

    @staticmethod
    def apply(params: list, x: torch.Tensor) -> torch.Tensor:
        """x [B, in] through the per-sample generated layers (ReLU between)."""
        for j, (w, b) in enumerate(params):
            x = torch.bmm(w, x.unsqueeze(-1)).squeeze(-1) + b
            if j < len(params) - 1:
                x = F.relu(x)
        return x


class HyperZero(nn.Module):
    def __init__(self, context_dim: int, obs_dim: int, act_dim: int, hidden: int = 256, use_q: bool = True,
                 embed_widths: tuple = (64, 128, 256)):
        super().__init__()
        self.embedding = MetaEmbedding(context_dim, embed_widths)
        self.pi_heads = GeneratedMLP(self.embedding.dim, obs_dim, hidden, act_dim)
        self.q_heads = GeneratedMLP(self.embedding.dim, obs_dim + act_dim, hidden, 1) if use_q else None

    @property
    def has_q(self) -> bool:
        return self.q_heads is not None

    def generate(self, context: torch.Tensor) -> dict:
        return per_unique_context(self._generate, context)

    def _generate(self, context: torch.Tensor) -> dict:
        z = self.embedding(context)
        out = {"pi": self.pi_heads.generate(z)}
        if self.has_q:
            out["q"] = self.q_heads.generate(z)
        return out

    def policy(self, params: dict, state: torch.Tensor) -> torch.Tensor:
        return torch.tanh(GeneratedMLP.apply(params["pi"], state))

    def q(self, params: dict, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return GeneratedMLP.apply(params["q"], torch.cat([state, action], -1))

    def act(self, context: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return self.policy(self.generate(context), state)


class MLPSolution(nn.Module):
    """Context-conditioned MLP policy (and Q): [z, state(, action)] -> hidden ReLU -> out."""

    def __init__(self, context_dim: int, obs_dim: int, act_dim: int, hidden: int = 256, use_q: bool = True,
                 embed_widths: tuple = (64, 128, 256)):
        super().__init__()
        self.embedding = MetaEmbedding(context_dim, embed_widths)
        d = self.embedding.dim
        self.pi_net = nn.Sequential(nn.Linear(d + obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, act_dim))
        self.q_net = nn.Sequential(nn.Linear(d + obs_dim + act_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1)) if use_q else None

    @property
    def has_q(self) -> bool:
        return self.q_net is not None

    def generate(self, context: torch.Tensor) -> torch.Tensor:
        return per_unique_context(self.embedding, context)

    def policy(self, z: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.pi_net(torch.cat([z, state], -1)))

    def q(self, z: torch.Tensor, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.q_net(torch.cat([z, state, action], -1))

    def act(self, context: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return self.policy(self.generate(context), state)


def build_approximator(name: str, context_dim: int, obs_dim: int, act_dim: int, hidden: int = 256,
                       embed_widths: tuple = (64, 128, 256)) -> tuple[nn.Module, bool]:
    """(model, use_td) for one of ``APPROXIMATORS``."""
    if name not in APPROXIMATORS:
        raise ValueError(f"unknown approximator {name!r}; choose from {', '.join(APPROXIMATORS)}")
    use_q = name not in ("hyperzero_without_q", "mlp_policy")
    use_td = name in ("hyperzero", "mlp_rl_td")
    cls = HyperZero if name.startswith("hyperzero") else MLPSolution
    return cls(context_dim, obs_dim, act_dim, hidden, use_q=use_q, embed_widths=embed_widths), use_td


def losses(model: nn.Module, batch: dict, gamma: float, use_td: bool, value_weight: float = 0.01,
           td_weight: float = 0.01) -> dict[str, torch.Tensor]:
    """{"total", "action", and if the model has Q: "value", and with use_td: "td"} for a batch
    of {"context", "state", "action", "next_state", "reward", "discount", "value"} [B, dim]."""
    params = model.generate(batch["context"])
    out = {"action": F.mse_loss(model.policy(params, batch["state"]), batch["action"])}
    total = out["action"]
    if model.has_q:
        out["value"] = F.mse_loss(model.q(params, batch["state"], batch["action"]), batch["value"])
        total = total + value_weight * out["value"]
        if use_td:
            with torch.no_grad():
                next_action = model.policy(params, batch["next_state"])
            target = batch["reward"] + gamma * batch["discount"] * model.q(params, batch["next_state"], next_action)
            out["td"] = F.mse_loss(batch["value"], target)
            total = total + td_weight * out["td"]
    out["total"] = total
    return out
