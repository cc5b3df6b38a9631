"""Actor-critic bodies: a plain MLP body and a hypernetwork body (Beck et al., CoRL 2022).

Both bodies (the MLP one lives in models/policy.py) share one interface so the Policy can use either::

    body(base_input [B, base_in_dim], cond [B, cond_dim]) -> (actor_out [B, A], value [B, 1])

Leading dims other than B are allowed (``[..., d]``): inputs are flattened and the outputs
reshaped back.

``models.policy.MLPActorCritic``: cond is concatenated to base_input; separate actor and critic MLPs.

``HyperActorCritic``: the conditioning vector (e.g. the embedded belief / RNN latent) goes
through a small hypernetwork trunk (``hypernet_layers``; identity when empty). For every
*generated* base layer, a weight head and a bias head map the trunk output h [B, d_h] to a
per-sample weight matrix W [B, out, in] and bias b [B, out]; the base net (which sees only
base_input) is then evaluated per sample, without materialising W: W(h) x = A (x outer h) + C x
for the weight head W(h) = A h + C (``_BaseNet.generated_linear``). Actor and critic have
separate base nets and separate heads (the trunk is shared). Layers that are not generated
are ordinary ``nn.Linear`` layers. ``film=True``: base weights are ordinary (no bias) and the
hypernet gives a per-unit scale and shift: ``h = (W x) * scale + shift``.

Initialisations (``init``):

* ``bias_hyperinit`` (default): weight-head matrix 0, weight-head bias = the standard base
  init (normc with the layer's gain) flattened; bias heads all 0. At init the generated net
  is exactly a standard-initialised network with zero biases, independent of cond.
  FiLM: scale heads give 1, shift heads give 0.
* ``weight_hyperinit``: every column of the weight-head matrix ([out*in, d_h]) is an
  independent standard base init of shape (out, in); head biases 0 and bias heads 0.
* ``hfi`` (Hyperfan-in, Chang et al. 2020): heads uniform, zero head bias, with
  Var = gain^2 / (2 d_h d_in) (weight heads) and gain^2 / (2 d_h) (bias heads); so with
  unit-variance h and unit-variance layer input, the pre-activation has variance gain^2.
  Trunk layers use kaiming_uniform (fan_in). Assumes normalised cond.
* ``naive_kaiming`` / ``naive_normc`` / ``naive_orthogonal``: the heads get an ordinary
  layer init (kaiming_uniform fan_in / normc with the layer gain / orthogonal with the layer
  gain), head biases 0.

Layer gains: ``calculate_gain(activation)`` for hidden layers, ``actor_head_gain`` for the
actor output (0.01 for categorical logits, 1.0 for a gaussian mean), 1.0 for the value head.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.common import activation_gain, get_activation, init_linear, normc_

INITS = ("naive_kaiming", "naive_normc", "naive_orthogonal", "hfi", "weight_hyperinit", "bias_hyperinit")


def standard_base_weight(out_dim: int, in_dim: int, gain: float) -> torch.Tensor:
    """The standard init of a base-net weight [out, in]: normc with ``gain``."""
    return normc_(torch.empty(out_dim, in_dim), gain)


def _flatten_lead(x: torch.Tensor) -> tuple[torch.Tensor, tuple]:
    lead = tuple(x.shape[:-1])
    return x.reshape(-1, x.shape[-1]), lead


class _BaseNet(nn.Module):
    """One base net (actor or critic) with its hypernet heads. Layer i: sizes[i] -> sizes[i+1]."""

    def __init__(self, sizes: list[int], generated: list[bool], gains: list[float], d_h: int, init: str,
                 film: bool, head_bias: bool):
        super().__init__()
        self.sizes, self.generated, self.gains, self.film = sizes, list(generated), gains, film
        n = len(sizes) - 1
        self.plain = nn.ModuleList()    # ordinary base layers (None placeholders via Identity)
        self.head_w = nn.ModuleList()   # weight heads (or FiLM scale heads)
        self.head_b = nn.ModuleList()   # bias heads (or FiLM shift heads)
        for i in range(n):
            d_in, d_out, gain = sizes[i], sizes[i + 1], gains[i]
            gen = self.generated[i]
            if not gen or film:
                layer = nn.Linear(d_in, d_out, bias=not (gen and film))
                self.plain.append(init_linear(layer, "normc", gain))
            else:
                self.plain.append(nn.Identity())
            if not gen:
                self.head_w.append(nn.Identity())
                self.head_b.append(nn.Identity())
                continue
            if film:
                hw, hb = nn.Linear(d_h, d_out), nn.Linear(d_h, d_out)
                self._init_film(hw, hb, init, gain)
            else:
                hw, hb = nn.Linear(d_h, d_out * d_in, bias=head_bias), nn.Linear(d_h, d_out)
                self._init_heads(hw, hb, init, d_h, d_in, d_out, gain)
            self.head_w.append(hw)
            self.head_b.append(hb)

    @staticmethod
    def _naive(layer: nn.Linear, init: str, gain: float):
        if init == "naive_kaiming":
            nn.init.kaiming_uniform_(layer.weight, mode="fan_in")
        elif init == "naive_normc":
            normc_(layer.weight, gain)
        elif init == "naive_orthogonal":
            nn.init.orthogonal_(layer.weight, gain)
        else:  # pragma: no cover
            raise ValueError(init)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)

    def _init_heads(self, hw: nn.Linear, hb: nn.Linear, init: str, d_h: int, d_in: int, d_out: int, gain: float):
        with torch.no_grad():
            if init == "bias_hyperinit":
                if hw.bias is None:
                    raise ValueError("bias_hyperinit needs head_bias=True (the base init lives in the head bias)")
                hw.weight.zero_()
                hw.bias.copy_(standard_base_weight(d_out, d_in, gain).flatten())
                hb.weight.zero_()
                hb.bias.zero_()
            elif init == "weight_hyperinit":
                cols = torch.stack([standard_base_weight(d_out, d_in, gain).flatten() for _ in range(d_h)], 1)
                hw.weight.copy_(cols)
                if hw.bias is not None:
                    hw.bias.zero_()
                hb.weight.zero_()
                hb.bias.zero_()
            elif init == "hfi":
                bw = gain * math.sqrt(3.0 / (2.0 * d_h * d_in))
                bb = gain * math.sqrt(3.0 / (2.0 * d_h))
                hw.weight.uniform_(-bw, bw)
                hb.weight.uniform_(-bb, bb)
                if hw.bias is not None:
                    hw.bias.zero_()
                hb.bias.zero_()
            else:
                self._naive(hw, init, gain)
                self._naive(hb, init, gain)

    def _init_film(self, hs: nn.Linear, ht: nn.Linear, init: str, gain: float):
        with torch.no_grad():
            if init == "bias_hyperinit":
                hs.weight.zero_()
                hs.bias.fill_(1.0)
                ht.weight.zero_()
                ht.bias.zero_()
            elif init.startswith("naive_"):
                self._naive(hs, init, gain)
                self._naive(ht, init, gain)
            else:
                raise ValueError(f"FiLM supports init bias_hyperinit or naive_*, got {init!r}")

    def generate(self, h: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
        """Per layer: (W [B,out,in], b [B,out]) (FiLM: (scale [B,out], shift [B,out])) or None."""
        out = []
        B = h.shape[0]
        for i, gen in enumerate(self.generated):
            if not gen:
                out.append(None)
            elif self.film:
                out.append((self.head_w[i](h), self.head_b[i](h)))
            else:
                W = self.head_w[i](h).view(B, self.sizes[i + 1], self.sizes[i])
                out.append((W, self.head_b[i](h)))
        return out

    def generated_linear(self, i: int, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """x through generated layer i without materialising W [B, out, in]: with the weight head
        W(h) = A h + C (A [out, in, d_h]), W(h) x = A (x outer h) + C x. Same numbers as
        applying ``generate(h)[i]`` per sample, but O(B in d_h) memory instead of O(B out in)."""
        hw, d_in, d_out = self.head_w[i], self.sizes[i], self.sizes[i + 1]
        outer = (x[:, :, None] * h[:, None, :]).reshape(x.shape[0], d_in * h.shape[1])
        z = F.linear(outer, hw.weight.view(d_out, d_in * h.shape[1]))
        if hw.bias is not None:
            z = z + F.linear(x, hw.bias.view(d_out, d_in))
        return z + self.head_b[i](h)

    def forward(self, x: torch.Tensor, h: torch.Tensor, act, return_preacts: bool = False):
        n = len(self.generated)
        pre = []
        for i, gen in enumerate(self.generated):
            if not gen:
                z = self.plain[i](x)
            elif self.film:
                z = self.plain[i](x) * self.head_w[i](h) + self.head_b[i](h)
            else:
                z = self.generated_linear(i, x, h)
            pre.append(z)
            x = act(z) if i < n - 1 else z
        return (x, pre) if return_preacts else x


class HyperActorCritic(nn.Module):
    """Hypernetwork actor-critic body. See the module docstring."""

    def __init__(self, base_in_dim: int, cond_dim: int, hidden_layers: list[int], actor_out_dim: int, *,
                 activation: str = "tanh", hypernet_layers: list[int] | None = None,
                 generated_layers: list[bool] | None = None, head_bias: bool = True,
                 init: str = "bias_hyperinit", film: bool = False, actor_head_gain: float = 0.01):
        if hypernet_layers is None:
            hypernet_layers = []
        super().__init__()
        if init not in INITS:
            raise ValueError(f"unknown hypernet init {init!r}; choose from {INITS}")
        self.base_in_dim, self.cond_dim = int(base_in_dim), int(cond_dim)
        self.actor_out_dim = int(actor_out_dim)
        self.init, self.film, self.activation = init, film, activation
        hidden_layers = list(hidden_layers)
        n_layers = len(hidden_layers) + 1
        if generated_layers is None:
            generated_layers = [True] * n_layers
        generated_layers = [bool(g) for g in generated_layers]
        if len(generated_layers) != n_layers:
            raise ValueError(f"generated_layers needs {n_layers} entries (hidden layers + output head), "
                             f"got {len(generated_layers)}")
        self.generated_layers = generated_layers
        self.act = get_activation(activation)
        gain = activation_gain(activation)

        # hypernet trunk (shared by actor and critic heads)
        trunk, d = [], self.cond_dim
        for width in hypernet_layers:
            layer = nn.Linear(d, width)
            if init == "hfi":
                nn.init.kaiming_uniform_(layer.weight, mode="fan_in")
                nn.init.zeros_(layer.bias)
            else:
                init_linear(layer, "normc", gain)
            trunk.append(layer)
            d = width
        self.trunk = nn.ModuleList(trunk)
        self.d_h = d

        sizes_a = [self.base_in_dim] + hidden_layers + [self.actor_out_dim]
        sizes_c = [self.base_in_dim] + hidden_layers + [1]
        gains_hidden = [gain] * len(hidden_layers)
        self.actor = _BaseNet(sizes_a, generated_layers, gains_hidden + [actor_head_gain], self.d_h, init, film, head_bias)
        self.critic = _BaseNet(sizes_c, generated_layers, gains_hidden + [1.0], self.d_h, init, film, head_bias)

    def hyper_embedding(self, cond: torch.Tensor) -> torch.Tensor:
        h = cond
        for layer in self.trunk:
            h = self.act(layer(h))
        return h

    def generate(self, cond: torch.Tensor):
        """(actor_params, critic_params): per-layer lists as in ``_BaseNet.generate`` (cond [B, c])."""
        h = self.hyper_embedding(cond)
        return self.actor.generate(h), self.critic.generate(h)

    def generated_params(self, base_input: torch.Tensor | None, cond: torch.Tensor) -> torch.Tensor:
        """Concatenated generated base-net parameters [..., P] (actor then critic; per layer W
        flattened then b; FiLM: scale then shift). ``base_input`` is unused (the parameters depend
        on cond only) and kept for interface symmetry (BI++HN target)."""
        cond2, lead = _flatten_lead(cond)
        pa, pc = self.generate(cond2)
        parts = []
        for p in pa + pc:
            if p is not None:
                parts += [p[0].reshape(cond2.shape[0], -1), p[1].reshape(cond2.shape[0], -1)]
        if not parts:
            return cond2.new_zeros(*lead, 0)
        return torch.cat(parts, 1).reshape(*lead, -1)

    def forward(self, base_input: torch.Tensor, cond: torch.Tensor):
        x, lead = _flatten_lead(base_input)
        c, _ = _flatten_lead(cond)
        h = self.hyper_embedding(c)
        a = self.actor(x, h, self.act)
        v = self.critic(x, h, self.act)
        return a.reshape(*lead, -1), v.reshape(*lead, 1)

    def forward_actor(self, base_input: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Only the actor output (acting needs no value)."""
        x, lead = _flatten_lead(base_input)
        c, _ = _flatten_lead(cond)
        return self.actor(x, self.hyper_embedding(c), self.act).reshape(*lead, -1)

    def preactivations(self, base_input: torch.Tensor, cond: torch.Tensor):
        """(actor pre-activations, critic pre-activations): per-layer lists (for init analysis)."""
        h = self.hyper_embedding(cond)
        _, pa = self.actor(base_input, h, self.act, return_preacts=True)
        _, pc = self.critic(base_input, h, self.act, return_preacts=True)
        return pa, pc


__all__ = ["INITS", "HyperActorCritic"]
