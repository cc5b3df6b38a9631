"""The VariBAD belief encoder: per-input embeddings -> GRU -> (mean, logvar) of q(m | tau_:t).

Shapes: sequences are time-major, [T, B, d]. ``forward(..., return_prior=True)`` prepends
the prior (the heads applied to the initial hidden state), so outputs have T+1 entries;
entry t is the posterior after t transitions. The encoder never sees s_0 (as in VariBAD).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from models.common import FeatureExtractor, mlp


class Posterior(NamedTuple):
    mean: torch.Tensor
    logvar: torch.Tensor
    hidden: torch.Tensor


def sample_gaussian(mean: torch.Tensor, logvar: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
    if deterministic:
        return mean
    return mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)


class RNNEncoder(nn.Module):
    def __init__(self, obs_dim: int, action_dim: int, latent_dim: int, hidden_size: int = 64,
                 action_embed: int = 0, state_embed: int = 8, reward_embed: int = 8,
                 layers_before: list[int] = (), layers_after: list[int] = ()):
        super().__init__()
        self.hidden_size, self.latent_dim = hidden_size, latent_dim
        self.action_encoder = FeatureExtractor(action_dim, action_embed)
        self.state_encoder = FeatureExtractor(obs_dim, state_embed)
        self.reward_encoder = FeatureExtractor(1, reward_embed)
        in_dim = action_embed + state_embed + reward_embed
        self.before = mlp(in_dim, list(layers_before), "relu")
        in_dim = layers_before[-1] if layers_before else in_dim
        self.gru = nn.GRU(in_dim, hidden_size)
        for name, p in self.gru.named_parameters():
            if "bias" in name:
                nn.init.zeros_(p)
            else:
                nn.init.orthogonal_(p)
        self.after = mlp(hidden_size, list(layers_after), "relu")
        out_in = layers_after[-1] if layers_after else hidden_size
        self.fc_mu = nn.Linear(out_in, latent_dim)
        self.fc_logvar = nn.Linear(out_in, latent_dim)

    def initial_hidden(self, batch: int, device=None) -> torch.Tensor:
        return torch.zeros(batch, self.hidden_size, device=device or self.fc_mu.weight.device)

    def heads(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.after(hidden) if len(self.after) else hidden
        return self.fc_mu(h), self.fc_logvar(h)

    def prior(self, batch: int) -> Posterior:
        hidden = self.initial_hidden(batch)
        return Posterior(*self.heads(hidden), hidden)

    def embed(self, actions, states, rewards) -> torch.Tensor:
        parts = [enc(x) for enc, x in ((self.action_encoder, actions), (self.state_encoder, states),
                                       (self.reward_encoder, rewards)) if enc.out_dim > 0]
        x = torch.cat(parts, -1)
        return self.before(x) if len(self.before) else x

    def forward(self, actions, states, rewards, hidden=None, return_prior: bool = True,
                detach_every: int | None = None) -> Posterior:
        """Encode whole sequences [T, B, .]; hidden None means 'start from the prior'."""
        batch = actions.shape[1]
        h0 = self.initial_hidden(batch) if hidden is None else hidden
        x = self.embed(actions, states, rewards)
        if detach_every is None:
            out, _ = self.gru(x, h0[None])
        else:  # truncated BPTT
            outs, h = [], h0[None]
            for start in range(0, x.shape[0], detach_every):
                o, h = self.gru(x[start:start + detach_every], h)
                outs.append(o)
                h = h.detach()
            out = torch.cat(outs, 0)
        if return_prior:
            out = torch.cat([h0[None], out], 0)
        return Posterior(*self.heads(out), out)

    def step(self, action, state, reward, hidden, done: torch.Tensor | None = None) -> Posterior:
        """One transition for a batch [B, .]. Where ``done`` (BAMDP ended) the new posterior
        is the prior: the next observation already belongs to a new task."""
        x = self.embed(action, state, reward)
        g = self.gru
        h = torch.gru_cell(x, hidden, g.weight_ih_l0, g.weight_hh_l0, g.bias_ih_l0, g.bias_hh_l0)
        if done is not None:
            h = h * (~done).float()[:, None]
        return Posterior(*self.heads(h), h)

    def forward_with_resets(self, actions, states, rewards, hidden0, dones) -> Posterior:
        """Step through a rollout [T, B, .] resetting to the prior after BAMDP ends (RL2
        gradients through the encoder). Returns posteriors [T+1] (entry 0 from hidden0)."""
        means, logvars, hiddens = [], [], [hidden0]
        mean0, logvar0 = self.heads(hidden0)
        means.append(mean0)
        logvars.append(logvar0)
        x = self.embed(actions, states, rewards)
        h = hidden0
        g = self.gru
        for t in range(x.shape[0]):
            h = torch.gru_cell(x[t], h, g.weight_ih_l0, g.weight_hh_l0, g.bias_ih_l0, g.bias_hh_l0)
            h = h * (~dones[t]).float()[:, None]
            m, lv = self.heads(h)
            means.append(m)
            logvars.append(lv)
            hiddens.append(h)
        return Posterior(torch.stack(means), torch.stack(logvars), torch.stack(hiddens))
