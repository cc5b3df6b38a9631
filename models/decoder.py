"""VAE decoders: reward p(r|s,a,s',m), state p(s'|s,a,m), task p(task|m).

The ELBO decodes every (posterior k, step d) pair. ``pairs`` evaluates the decoder on all
K x D pairs without materialising the [K, D, B, z + inputs] input: the first layer is
linear in its concatenated input, so W [z; x] + b = (W_z z)[k] + (W_x x + b)[d] is
computed as K + D small matmuls and one broadcast add (same numbers, a fraction of the
FLOPs and memory).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.common import FeatureExtractor, mlp


def _pairs(net: nn.Sequential, latent: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """net(cat(latent[k], inputs[d])) for all k, d: latent [K, B, z], inputs [D, B, e] ->
    [K, D, B, out]. ``net`` starts with Linear(z + e, h) and an activation."""
    first, z = net[0], latent.shape[-1]
    h = F.linear(latent, first.weight[:, :z])[:, None] + F.linear(inputs, first.weight[:, z:], first.bias)[None]
    return net[2:](net[1](h))


class RewardDecoder(nn.Module):
    """Deterministic regression r(m, s', [s], [a]); or multi-head: one logit per discrete
    state from m alone (GridNavi), gathered at the index of s' by the caller."""

    def __init__(self, latent_dim: int, obs_dim: int, action_dim: int, layers: list[int],
                 state_embed: int, action_embed: int, input_prev_state: bool = True,
                 input_action: bool = True, multihead_size: int | None = None):
        super().__init__()
        self.multihead = multihead_size is not None
        self.input_prev_state, self.input_action = input_prev_state, input_action
        if self.multihead:
            self.net = mlp(latent_dim, layers, "relu", multihead_size)
            return
        self.state_encoder = FeatureExtractor(obs_dim, state_embed)
        self.action_encoder = FeatureExtractor(action_dim, action_embed) if input_action else None
        in_dim = latent_dim + state_embed * (1 + int(input_prev_state)) + (action_embed if input_action else 0)
        self.net = mlp(in_dim, layers, "relu", 1)

    def _inputs(self, next_state, prev_state, action) -> torch.Tensor:
        parts = [self.state_encoder(next_state)]
        if self.input_prev_state:
            parts.append(self.state_encoder(prev_state))
        if self.input_action:
            parts.append(self.action_encoder(action))
        return torch.cat(parts, -1)

    def forward(self, latent, next_state=None, prev_state=None, action=None) -> torch.Tensor:
        if self.multihead:
            return self.net(latent)
        return self.net(torch.cat([latent, self._inputs(next_state, prev_state, action)], -1))

    def pairs(self, latent, next_state, prev_state, action) -> torch.Tensor:
        """All (posterior, step) pairs: latent [K, B, z], transitions [D, B, .] -> [K, D, B, 1]."""
        return _pairs(self.net, latent, self._inputs(next_state, prev_state, action))


class StateDecoder(nn.Module):
    """s' = f(m, s, a), trained with MSE."""

    def __init__(self, latent_dim: int, obs_dim: int, action_dim: int, layers: list[int],
                 state_embed: int, action_embed: int):
        super().__init__()
        self.state_encoder = FeatureExtractor(obs_dim, state_embed)
        self.action_encoder = FeatureExtractor(action_dim, action_embed)
        self.net = mlp(latent_dim + state_embed + action_embed, layers, "relu", obs_dim)

    def forward(self, latent, prev_state, action) -> torch.Tensor:
        return self.net(torch.cat([latent, self.state_encoder(prev_state), self.action_encoder(action)], -1))

    def pairs(self, latent, prev_state, action) -> torch.Tensor:
        """All (posterior, step) pairs: latent [K, B, z], transitions [D, B, .] -> [K, D, B, obs]."""
        return _pairs(self.net, latent, torch.cat([self.state_encoder(prev_state), self.action_encoder(action)], -1))


class TaskDecoder(nn.Module):
    """Task description (regression) or task-id logits from the latent."""

    def __init__(self, latent_dim: int, layers: list[int], out_dim: int):
        super().__init__()
        self.net = mlp(latent_dim, layers, "relu", out_dim)

    def forward(self, latent) -> torch.Tensor:
        return self.net(latent)
