"""Small building blocks shared by the encoder, decoders and policy."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class Posterior(NamedTuple):
    """A belief of the encoder: latent mean and log-variance, and the recurrent state behind them."""
    mean: torch.Tensor
    logvar: torch.Tensor
    hidden: torch.Tensor

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "leaky-relu": nn.LeakyReLU}


def normc_(weight: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Rows of ``weight`` get norm ``gain`` (OpenAI baselines' normc init)."""
    with torch.no_grad():
        weight.normal_(0, 1)
        weight *= gain / weight.pow(2).sum(1, keepdim=True).sqrt().clamp_min(1e-12)
    return weight


def init_linear(layer: nn.Linear, kind: str = "normc", gain: float = 1.0) -> nn.Linear:
    if kind == "normc":
        normc_(layer.weight, gain)
    elif kind == "orthogonal":
        nn.init.orthogonal_(layer.weight, gain)
    else:
        raise ValueError(f"unknown init {kind!r}")
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def mlp(in_dim: int, layers: list[int], activation: str = "relu", out_dim: int | None = None) -> nn.Sequential:
    """Linear+activation for each hidden size, then an optional linear output layer."""
    mods: list[nn.Module] = []
    for size in layers:
        mods += [nn.Linear(in_dim, size), ACTIVATIONS[activation]()]
        in_dim = size
    if out_dim is not None:
        mods.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*mods)


# the one table of activations as functions (config spells leaky-relu, torch leaky_relu: both work)
FUNCTIONAL = {"tanh": torch.tanh, "relu": torch.relu, "leaky-relu": torch.nn.functional.leaky_relu,
              "leaky_relu": torch.nn.functional.leaky_relu, "elu": torch.nn.functional.elu}


def get_activation(name: str):
    if name not in FUNCTIONAL:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(FUNCTIONAL)}")
    return FUNCTIONAL[name]


def activation_gain(name: str) -> float:
    """The init gain of a layer followed by this activation (elu: as relu)."""
    name = name.replace("-", "_")
    return nn.init.calculate_gain("relu" if name == "elu" else name)


class FeatureExtractor(nn.Module):
    """Linear + activation embedding of one input; size 0 means 'leave this input out'.
    (Functional calls inside: this runs every env step, module-call overhead matters.)"""

    def __init__(self, in_dim: int, out_dim: int, activation: str = "relu"):
        super().__init__()
        self.out_dim = out_dim
        self.fc = nn.Linear(in_dim, out_dim) if out_dim > 0 else None
        self.act = FUNCTIONAL[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fc is None:
            return x.new_zeros(*x.shape[:-1], 0)
        return self.act(torch.nn.functional.linear(x, self.fc.weight, self.fc.bias))
