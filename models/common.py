"""Small building blocks shared by the encoder, decoders and policy."""
from __future__ import annotations

import torch
from torch import nn

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


class FeatureExtractor(nn.Module):
    """Linear + activation embedding of one input; size 0 means 'leave this input out'."""

    def __init__(self, in_dim: int, out_dim: int, activation: str = "relu"):
        super().__init__()
        self.out_dim = out_dim
        self.net = nn.Sequential(nn.Linear(in_dim, out_dim), ACTIVATIONS[activation]()) if out_dim > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.net is None:
            return x.new_zeros(*x.shape[:-1], 0)
        return self.net(x)
