"""Random network distillation (RND) novelty bonus over one or several inputs (HyperX).

A frozen, randomly initialised *prior* net f and a trained *predictor* net f_hat map the
inputs (e.g. [state, belief]) to ``output_dim`` features; the bonus is the mean squared
prediction error over the output dims, which stays high on inputs unlike those trained on.

    prior f:      each input i -> Linear(d_i, 64); concat; ReLU; layers (256, 256) with ReLU;
                  Linear -> output_dim (128). Every parameter is multiplied by
                  ``init_weight_scale`` (10) after the default init. Never trained.
    predictor f_hat: raw concat of the inputs -> (256, 256) with ReLU -> output_dim; Adam(lr).

Optional input normalisation (``normalise_inputs``): each input is centred and scaled by its
running mean/std, out of place (the reference only divided by the std, in place, which
also modified the caller's tensors). Statistics are updated explicitly with ``observe``.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from utils.running_stats import RunningMeanStd


def _mlp(in_dim: int, layers: Sequence[int], out_dim: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    for width in layers:
        mods += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    mods.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*mods)


class RNDPrior(nn.Module):
    """Frozen random target net with a separate Linear(d_i, embed_dim) embedding per input."""

    def __init__(self, input_dims: Sequence[int], layers: Sequence[int] = (256, 256),
                 output_dim: int = 128, embed_dim: int = 64, weight_scale: float = 10.0):
        super().__init__()
        self.embedders = nn.ModuleList(nn.Linear(d, embed_dim) for d in input_dims)
        self.body = _mlp(embed_dim * len(input_dims), layers, output_dim)
        with torch.no_grad():
            for p in self.parameters():
                p.mul_(weight_scale)
                p.requires_grad_(False)
        self.eval()

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        h = torch.cat([emb(x) for emb, x in zip(self.embedders, inputs)], -1)
        return self.body(torch.relu(h))


class RNDPredictor(nn.Module):
    """Trained net on the raw concatenation of the inputs."""

    def __init__(self, input_dims: Sequence[int], layers: Sequence[int] = (256, 256), output_dim: int = 128):
        super().__init__()
        self.body = _mlp(sum(input_dims), layers, output_dim)

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.body(torch.cat(list(inputs), -1))


class RND:
    """RND bonus over ``len(input_dims)`` inputs of sizes ``input_dims``.

    Args:
        input_dims: size d_i of each input, e.g. [state_dim, belief_dim].
        prior_layers / predictor_layers: hidden widths of the two nets.
        output_dim: size of the random features.
        init_weight_scale: multiplier applied to every prior parameter.
        lr: Adam learning rate of the predictor.
        normalise_inputs: centre/scale inputs with running stats (updated by ``observe``).
    Methods (inputs = list of tensors [..., d_i] with equal leading dims):
        bonus(inputs) -> [...]   mean over output dims of (f - f_hat)^2, no gradient
        update(inputs) -> float  one Adam step on the mean of that error, returns the loss
        observe(inputs)          update the input statistics (no-op unless normalise_inputs)
    """

    def __init__(self, input_dims: Sequence[int], prior_layers: Sequence[int] = (256, 256),
                 predictor_layers: Sequence[int] = (256, 256), output_dim: int = 128,
                 init_weight_scale: float = 10.0, lr: float = 1e-4, normalise_inputs: bool = False,
                 device="cpu"):
        self.input_dims = [int(d) for d in input_dims]
        if not self.input_dims or min(self.input_dims) < 1:
            raise ValueError(f"RND needs inputs of size >= 1, got {self.input_dims}")
        self.device = torch.device(device)
        self.prior = RNDPrior(self.input_dims, prior_layers, output_dim,
                              weight_scale=init_weight_scale).to(self.device)
        self.predictor = RNDPredictor(self.input_dims, predictor_layers, output_dim).to(self.device)
        self.optimiser = torch.optim.Adam(self.predictor.parameters(), lr=lr)
        self.normalise_inputs = normalise_inputs
        self.input_rms = [RunningMeanStd((d,)).to(self.device) for d in self.input_dims]
        self.epsilon = 1e-8

    def _prepare(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(inputs) != len(self.input_dims):
            raise ValueError(f"expected {len(self.input_dims)} inputs, got {len(inputs)}")
        out = []
        for x, d, rms in zip(inputs, self.input_dims, self.input_rms):
            if x.shape[-1] != d:
                raise ValueError(f"input of size {x.shape[-1]} where {d} was declared")
            x = x.to(self.device, torch.float32)
            if self.normalise_inputs:  # new tensor: the caller's input stays untouched
                x = (x - rms.mean) / torch.sqrt(rms.var + self.epsilon)
            out.append(x)
        return out

    def _error(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            target = self.prior(inputs)
        return (target - self.predictor(inputs)).pow(2).mean(-1)

    @torch.no_grad()
    def observe(self, inputs: Sequence[torch.Tensor]) -> None:
        if self.normalise_inputs:
            for x, rms in zip(inputs, self.input_rms):
                rms.update(x.to(self.device, torch.float32).reshape(-1, x.shape[-1]))

    @torch.no_grad()
    def bonus(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        return self._error(self._prepare(inputs))

    def update(self, inputs: Sequence[torch.Tensor]) -> float:
        loss = self._error(self._prepare(inputs)).mean()
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        return float(loss.detach())

    def state_dict(self) -> dict:
        return {"prior": self.prior.state_dict(), "predictor": self.predictor.state_dict(),
                "optimiser": self.optimiser.state_dict(),
                "input_rms": [rms.state_dict() for rms in self.input_rms]}

    def load_state_dict(self, state: dict) -> None:
        self.prior.load_state_dict(state["prior"])
        self.predictor.load_state_dict(state["predictor"])
        self.optimiser.load_state_dict(state["optimiser"])
        for rms, s in zip(self.input_rms, state["input_rms"]):
            rms.load_state_dict(s)
