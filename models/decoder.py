"""VAE decoders: reward p(r|s,a,s',m), state p(s'|s,a,m), task p(task|m)."""
from __future__ import annotations

import torch
from torch import nn

from models.common import FeatureExtractor, mlp


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

    def forward(self, latent, next_state=None, prev_state=None, action=None) -> torch.Tensor:
        if self.multihead:
            return self.net(latent)
        parts = [latent, self.state_encoder(next_state)]
        if self.input_prev_state:
            parts.append(self.state_encoder(prev_state))
        if self.input_action:
            parts.append(self.action_encoder(action))
        return self.net(torch.cat(parts, -1))


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


class TaskDecoder(nn.Module):
    """Task description (regression) or task-id logits from the latent."""

    def __init__(self, latent_dim: int, layers: list[int], out_dim: int):
        super().__init__()
        self.net = mlp(latent_dim, layers, "relu", out_dim)

    def forward(self, latent) -> torch.Tensor:
        return self.net(latent)
