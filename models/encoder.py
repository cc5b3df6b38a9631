"""The VariBAD belief encoder: per-input embeddings -> GRU -> (mean, logvar) of q(m | tau_:t).

Two encoders share one calling convention (``prev_states`` is used only with full
transitions): ``RNNEncoder`` is VariBAD's GRU encoder, kept lean because it runs every
env step; ``AggregatorEncoder`` wraps models/history_encoder.HistoryEncoder (LSTM, transformer,
no-RNN encoders, SplAgger/AMRL/CNP/PEARL aggregators). ``build_encoder`` picks one.

Shapes: sequences are time-major, [T, B, d]. ``forward(..., return_prior=True)`` prepends
the prior (the heads applied to the initial hidden state), so outputs have T+1 entries;
entry t is the posterior after t transitions. The encoder never sees s_0 (as in VariBAD).
"""
from __future__ import annotations

import torch
from torch import nn

from models.common import FeatureExtractor, Posterior, mlp


def sample_gaussian(mean: torch.Tensor, logvar: torch.Tensor, deterministic: bool = False,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    if deterministic:
        return mean
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + noise * torch.exp(0.5 * logvar)


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
        self.fc_out = nn.Linear(out_in, 2 * latent_dim)  # (mean, logvar) in one matmul

    def initial_hidden(self, batch: int, device=None) -> torch.Tensor:
        return torch.zeros(batch, self.hidden_size, device=device or self.fc_out.weight.device)

    def heads(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.after(hidden) if len(self.after) else hidden
        out = torch.nn.functional.linear(h, self.fc_out.weight, self.fc_out.bias)
        return out[..., :self.latent_dim], out[..., self.latent_dim:]

    def prior(self, batch: int) -> Posterior:
        hidden = self.initial_hidden(batch)
        return Posterior(*self.heads(hidden), hidden)

    def embed(self, actions, states, rewards) -> torch.Tensor:
        parts = [enc(x) for enc, x in ((self.action_encoder, actions), (self.state_encoder, states),
                                       (self.reward_encoder, rewards)) if enc.out_dim > 0]
        x = torch.cat(parts, -1)
        return self.before(x) if len(self.before) else x

    def forward(self, actions, states, rewards, hidden=None, return_prior: bool = True,
                detach_every: int | None = None, prev_states=None) -> Posterior:
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

    def step(self, action, state, reward, hidden, done: torch.Tensor | None = None, prev_state=None) -> Posterior:
        """One transition for a batch [B, .]. Where ``done`` (BAMDP ended) the new posterior
        is the prior: the next observation already belongs to a new task."""
        x = self.embed(action, state, reward)
        g = self.gru
        h = torch.gru_cell(x, hidden, g.weight_ih_l0, g.weight_hh_l0, g.bias_ih_l0, g.bias_hh_l0)
        if done is not None:
            h = h * (~done).float()[:, None]
        return Posterior(*self.heads(h), h)

    def forward_with_resets(self, actions, states, rewards, hidden0, dones, prev_states=None) -> Posterior:
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


class AggregatorEncoder(nn.Module):
    """models.history_encoder.HistoryEncoder with RNNEncoder's calling convention."""

    def __init__(self, **kwargs):
        super().__init__()
        import warnings

        from models.history_encoder import HistoryEncoder

        with warnings.catch_warnings():  # a 0-size embedding (input left out) warns on init
            warnings.filterwarnings("ignore", "Initializing zero-element tensors")
            self.net = HistoryEncoder(**kwargs)
        self.latent_dim = self.net.latent_dim

    @property
    def hidden_size(self) -> int:
        return self.net.state_size

    def initial_hidden(self, batch: int, device=None) -> torch.Tensor:
        return self.net.initial_hidden(batch, device)

    def prior(self, batch: int) -> Posterior:
        return Posterior(*self.net.prior(batch))

    def forward(self, actions, states, rewards, hidden=None, return_prior: bool = True,
                detach_every: int | None = None, prev_states=None) -> Posterior:
        return Posterior(*self.net(actions, states, rewards, prev_states, hidden, return_prior=return_prior,
                                   return_all_hidden=True, detach_every=detach_every))

    def step(self, action, state, reward, hidden, done=None, prev_state=None) -> Posterior:
        return Posterior(*self.net.step(action, state, reward, hidden, done, prev_state))

    def forward_with_resets(self, actions, states, rewards, hidden0, dones, prev_states=None) -> Posterior:
        return Posterior(*self.net.forward_with_resets(actions, states, rewards, hidden0, dones, prev_states))


def build_encoder(obs_dim: int, action_dim: int, cfg) -> nn.Module:
    """The VariBAD GRU encoder unless an option asks for the general history encoder."""
    general = (cfg.encoder_type != "gru" or cfg.encoder_agg_type or cfg.full_transitions
               or cfg.encoder_learn_init_state)
    if not general:
        return RNNEncoder(obs_dim, action_dim, cfg.latent_dim, cfg.encoder_gru_hidden_size, cfg.action_embedding_size,
                          cfg.state_embedding_size, cfg.reward_embedding_size, cfg.encoder_layers_before_gru,
                          cfg.encoder_layers_after_gru)
    return AggregatorEncoder(
        action_dim=action_dim, state_dim=obs_dim, latent_dim=cfg.latent_dim, action_embed_dim=cfg.action_embedding_size,
        state_embed_dim=cfg.state_embedding_size, reward_embed_dim=cfg.reward_embedding_size,
        full_transitions=cfg.full_transitions, layers_before=cfg.encoder_layers_before_gru, enc_type=cfg.encoder_type,
        hidden_size=cfg.encoder_gru_hidden_size, layers_after_enc=cfg.encoder_layers_after_gru,
        skip=cfg.encoder_skip_type, agg_type=cfg.encoder_agg_type, layers_after_agg=cfg.encoder_layers_after_agg,
        st_estimator=cfg.encoder_st_estimator, max_init_low=cfg.encoder_max_init_low,
        learn_init_state=cfg.encoder_learn_init_state, invariant_init=cfg.encoder_invariant_init,
        softmax_temp=cfg.encoder_softmax_temp, learn_temps=cfg.encoder_learn_temps, wavg_temp=cfg.encoder_wavg_temp,
        transformer_token_size=cfg.transformer_token_size, transformer_layers=cfg.transformer_num_layers,
        transformer_heads=cfg.transformer_num_heads, transformer_mem=cfg.transformer_mem_size)
