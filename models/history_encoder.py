"""History encoder
---------------
``HistoryEncoder`` realises::

    (a, r, s') or (s, a, r, s')  -> per-input embeddings (Linear + ReLU) -> layers_before (ReLU)
    -> sequential encoder E in {gru, lstm, transformer, none (= tanh Linear)}
    -> layers_after_enc (ReLU, last one linear)
    -> [split: first half skip | second half aggregated]     (skip='split', SplAgger)
    -> aggregator (or none) -> cat(skip, aggregated) -> layers_after_agg (ReLU)
    -> Linear -> (mean, logvar) of latent_dim                 (gauss: the aggregator output directly)

Its hidden state is one tensor [B, state_size] = cat(encoder state, aggregator state); the
'none' and 'transformer' encoders keep their last output in the state so that the prior of
any hidden state is well defined (entry 0 of ``forward(..., return_prior=True)``). The
transformer attends over the tokens of the current call plus at most ``transformer_mem``
buffered earlier tokens.

``forward`` returns ``Posterior(mean, logvar, hidden)`` (a NamedTuple, so it also unpacks as a
3-tuple). For drop-in use where models/encoder.RNNEncoder is used, the encoder also offers
``hidden_size``, ``prior(batch_or_hidden)``, ``step(a, s, r, hidden, done, prev_state)`` (reset to
the prior after ``done``), ``forward_with_resets(a, s, r, hidden0, dones, prev_states)`` and the
``return_all_hidden`` / ``detach_every`` options of ``forward``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.aggregators import AGG_TYPES, make_aggregator
from models.common import Posterior, mlp
from models.sequence_encoders import ENC_TYPES, _GRUEnc, _LinearEnc, _LSTMEnc, _TransformerEnc


def _mlp(sizes: list[int], last_linear: bool) -> nn.Sequential:
    """ReLU MLP through ``sizes`` (the last layer linear if ``last_linear``)."""
    if last_linear and len(sizes) > 1:
        return mlp(sizes[0], sizes[1:-1], "relu", sizes[-1])
    return mlp(sizes[0], sizes[1:], "relu")


class HistoryEncoder(nn.Module):
    """History encoder with optional split aggregation. See the module docstring.

    forward(actions [T,B,da], states [T,B,ds], rewards [T,B,1], prev_states [T,B,ds] | None,
            hidden [B,S] | None, return_prior=False, done_mask [T,B] | None)
        -> (mean [T(+1),B,z], logvar [T(+1),B,z], hidden_out [B,S])

    With return_prior, index 0 is computed from ``hidden`` before any input (the prior for the
    initial hidden state). ``done_mask[t]`` resets the hidden state before step t. 2-D inputs
    ([B, d], one step) give outputs without the T dim (unless return_prior).
    """

    def __init__(self, action_dim: int, state_dim: int, latent_dim: int, reward_dim: int = 1,
                 action_embed_dim: int = 10, state_embed_dim: int = 10, reward_embed_dim: int = 5,
                 full_transitions: bool = False, layers_before: list[int] = (), enc_type: str | None = "gru",
                 hidden_size: int = 64, layers_after_enc: list[int] = (), skip: str | None = None,
                 agg_type: str | None = None, layers_after_agg: list[int] = (), st_estimator: bool = False,
                 max_init_low: bool = False, learn_init_state: bool = False, invariant_init: bool = False,
                 softmax_temp: float = 1.0, learn_temps: bool = True, wavg_temp: float | None = None,
                 transformer_token_size: int | None = None, transformer_layers: int = 2,
                 transformer_heads: int = 2, transformer_mem: int = 256):
        super().__init__()
        enc_type = "none" if enc_type in (None, "None") else enc_type
        if enc_type not in ENC_TYPES:
            raise ValueError(f"unknown enc_type {enc_type!r}; choose from {ENC_TYPES}")
        skip = None if skip in (None, "none", "None") else skip
        if skip not in (None, "split", "enc"):
            raise ValueError(f"skip must be None or 'split', got {skip!r}")
        agg_type = None if agg_type in (None, "none", "None") else agg_type
        self.latent_dim, self.full_transitions = latent_dim, full_transitions
        self.enc_type, self.skip, self.agg_type = enc_type, skip, agg_type
        self.action_dim, self.state_dim, self.reward_dim = action_dim, state_dim, reward_dim

        self.fc_action = nn.Linear(action_dim, action_embed_dim)
        self.fc_state = nn.Linear(state_dim, state_embed_dim)
        self.fc_reward = nn.Linear(reward_dim, reward_embed_dim)
        d = action_embed_dim + reward_embed_dim + state_embed_dim * (2 if full_transitions else 1)
        self.fc_before = _mlp([d] + list(layers_before), last_linear=False)
        d = ([d] + list(layers_before))[-1]

        if enc_type == "gru":
            self.enc = _GRUEnc(d, hidden_size)
        elif enc_type == "lstm":
            self.enc = _LSTMEnc(d, hidden_size, invariant_init=invariant_init)
        elif enc_type == "transformer":
            self.enc = _TransformerEnc(d, transformer_token_size or 16, transformer_layers, transformer_heads,
                                       transformer_mem)
        else:
            self.enc = _LinearEnc(d, hidden_size)
        d = self.enc.out_dim
        self.fc_after_enc = _mlp([d] + list(layers_after_enc), last_linear=True)
        d = ([d] + list(layers_after_enc))[-1]
        self.feature_dim = d

        if skip is not None:
            if agg_type is None:
                raise ValueError("skip='split' needs an aggregator")
            if d % 2:
                raise ValueError(f"split needs an even feature size, got {d}")
        self.skip_dim = d // 2 if skip else 0
        to_agg = d - self.skip_dim
        self.agg_proj = None
        self.agg = None
        if agg_type == "gauss":
            if skip or layers_after_agg:
                raise ValueError("gauss outputs (mean, logvar) directly: no split, no layers after it")
            self.agg_proj = nn.Linear(to_agg, 2 * latent_dim)
            self.agg = make_aggregator("gauss", 2 * latent_dim, learn_init=learn_init_state)
        elif agg_type is not None:
            self.agg = make_aggregator(agg_type, to_agg, st_estimator=st_estimator, max_init_low=max_init_low,
                                       softmax_temp=softmax_temp, learn_temps=learn_temps, wavg_temp=wavg_temp,
                                       learn_init=learn_init_state)
        agg_out = self.agg.out_dim if self.agg is not None else to_agg
        if agg_type != "gauss":
            d = self.skip_dim + agg_out
            self.fc_after_agg = _mlp([d] + list(layers_after_agg), last_linear=False)
            d = ([d] + list(layers_after_agg))[-1]
            self.fc_out = nn.Linear(d, 2 * latent_dim)

        self.enc_state_size = self.enc.state_size
        self.agg_state_size = self.agg.state_size if self.agg is not None else 0
        self.state_size = self.enc_state_size + self.agg_state_size
        self.enc_init = nn.Parameter(torch.zeros(self.enc_state_size), requires_grad=learn_init_state)

    # ----- hidden state ---------------------------------------------------------------
    def initial_hidden(self, batch: int, device=None) -> torch.Tensor:
        device = device if device is not None else self.enc_init.device
        parts = [self.enc_init.to(device).expand(batch, -1)]
        if self.agg is not None:
            parts.append(self.agg.initial_state(batch, device))
        return torch.cat(parts, -1)

    def reset_hidden(self, hidden: torch.Tensor, done_mask: torch.Tensor) -> torch.Tensor:
        init = self.initial_hidden(hidden.shape[0], hidden.device)
        return torch.where(done_mask.reshape(-1, 1).bool(), init, hidden)

    def split_hidden(self, hidden):
        return hidden[..., :self.enc_state_size], hidden[..., self.enc_state_size:]

    # ----- forward --------------------------------------------------------------------
    def embed(self, actions, states, rewards, prev_states=None):
        parts = []
        if self.full_transitions:
            if prev_states is None:
                raise ValueError("full_transitions=True needs prev_states")
            parts.append(F.relu(self.fc_state(prev_states)))
        parts += [F.relu(self.fc_action(actions)), F.relu(self.fc_reward(rewards)), F.relu(self.fc_state(states))]
        return self.fc_before(torch.cat(parts, -1))

    def _head(self, feat, agg_out):
        """feat [.., F] (post fc_after_enc), agg_out [.., A] or None -> (mean, logvar)."""
        if self.agg_type == "gauss":
            out = agg_out
        else:
            if self.agg is None:
                x = feat
            else:
                x = torch.cat([feat[..., :self.skip_dim], agg_out], -1) if self.skip else agg_out
            out = self.fc_out(self.fc_after_agg(x))
        return out[..., :self.latent_dim], out[..., self.latent_dim:]

    def _agg_input(self, feat):
        x = feat[..., self.skip_dim:]
        return self.agg_proj(x) if self.agg_proj is not None else x

    def prior(self, hidden: torch.Tensor | int) -> Posterior:
        """Posterior(mean [B, z], logvar [B, z], hidden [B, S]) that ``hidden`` encodes before any
        further input. An int gives the prior of the initial hidden state for that batch size."""
        if isinstance(hidden, int):
            hidden = self.initial_hidden(hidden)
        enc_h, agg_h = self.split_hidden(hidden)
        feat = self.fc_after_enc(self.enc.feature(enc_h))
        agg_out = self.agg.output(agg_h) if self.agg is not None else None
        return Posterior(*self._head(feat, agg_out), hidden)

    def forward(self, actions, states, rewards, prev_states=None, hidden=None, return_prior: bool = False,
                done_mask=None, return_all_hidden: bool = False, detach_every: int | None = None) -> Posterior:
        """See the class docstring. ``return_all_hidden``: the hidden field is the hidden state
        after every step [T(+1), B, S] (entry 0 = the given hidden when return_prior) instead of
        the last one [B, S]. ``detach_every``: truncated BPTT (hidden detached between chunks)."""
        single = actions.dim() == 2
        if single:
            actions, states, rewards = actions[None], states[None], rewards[None]
            prev_states = prev_states[None] if prev_states is not None else None
            done_mask = done_mask[None] if done_mask is not None else None
        if rewards.dim() == 2:
            rewards = rewards.unsqueeze(-1)
        T, B = actions.shape[:2]
        if hidden is None:
            hidden = self.initial_hidden(B, actions.device)
        if detach_every is not None and detach_every < T:
            means, logvars, hiddens, h = [], [], [], hidden
            for s0 in range(0, T, detach_every):
                sl = slice(s0, s0 + detach_every)
                post = self.forward(actions[sl], states[sl], rewards[sl],
                                    prev_states[sl] if prev_states is not None else None, h,
                                    return_prior=return_prior and s0 == 0,
                                    done_mask=done_mask[sl] if done_mask is not None else None,
                                    return_all_hidden=return_all_hidden)
                means.append(post.mean)
                logvars.append(post.logvar)
                hiddens.append(post.hidden)
                h = (post.hidden[-1] if return_all_hidden else post.hidden).detach()
            hid = torch.cat(hiddens, 0) if return_all_hidden else hiddens[-1]
            return Posterior(torch.cat(means, 0), torch.cat(logvars, 0), hid)
        if return_prior:
            pm, pl, _ = self.prior(hidden)
        done = done_mask.reshape(T, B).bool() if done_mask is not None else None
        enc_h0, agg_h0 = self.split_hidden(hidden)
        x = self.embed(actions, states, rewards, prev_states)
        enc_init = self.enc_init.to(x.device).expand(B, -1)
        h, enc_h = self.enc(x, enc_h0, done, enc_init, return_all_hidden)
        feat = self.fc_after_enc(h)
        agg_out = None
        if self.agg is not None:
            agg_out, agg_h = self.agg(self._agg_input(feat), agg_h0, done, all_states=return_all_hidden)
        mean, logvar = self._head(feat, agg_out)
        hidden_out = torch.cat([enc_h, agg_h], -1) if self.agg is not None else enc_h
        if return_prior:
            mean, logvar = torch.cat([pm[None], mean], 0), torch.cat([pl[None], logvar], 0)
            if return_all_hidden:
                hidden_out = torch.cat([hidden[None], hidden_out], 0)
        elif single:
            mean, logvar = mean[0], logvar[0]
            if return_all_hidden:
                hidden_out = hidden_out[0]
        return Posterior(mean, logvar, hidden_out)

    # ----- RNNEncoder-compatible helpers (models/encoder.py) ---------------------------------
    @property
    def hidden_size(self) -> int:
        return self.state_size

    def step(self, action, state, reward, hidden, done: torch.Tensor | None = None, prev_state=None) -> Posterior:
        """One transition [B, .]. Where ``done`` (the BAMDP ended) the returned posterior and
        hidden are the prior / initial hidden: the next observation belongs to a new task."""
        post = self.forward(action, state, reward, prev_state, hidden)
        if done is None:
            return post
        prior = self.prior(hidden.shape[0])
        d = done.reshape(-1, 1).bool()
        return Posterior(torch.where(d, prior.mean, post.mean), torch.where(d, prior.logvar, post.logvar),
                         torch.where(d, prior.hidden.to(post.hidden.dtype), post.hidden))

    def forward_with_resets(self, actions, states, rewards, hidden0, dones, prev_states=None) -> Posterior:
        """A rollout [T, B, .] that resets to the prior after each BAMDP end (``dones[t]``: the
        episode ended with step t). Returns means/logvars [T+1] (entry 0 from hidden0) and the
        hidden states [T+1, B, S]. Vectorised except for recurrent encoders with resets."""
        T, B = actions.shape[:2]
        dones = dones.reshape(T, B).bool()
        before = torch.cat([torch.zeros_like(dones[:1]), dones[:-1]], 0)  # reset before step t
        post = self.forward(actions, states, rewards, prev_states, hidden0, return_prior=True, done_mask=before,
                            return_all_hidden=True)
        prior = self.prior(B)
        d = torch.cat([torch.zeros_like(dones[:1]), dones], 0).unsqueeze(-1)
        return Posterior(torch.where(d, prior.mean, post.mean), torch.where(d, prior.logvar, post.logvar),
                         torch.where(d, prior.hidden, post.hidden))

    def features(self, actions, states, rewards, prev_states=None, hidden=None):
        """Per-step features before the final head: (skip part, aggregated part) [T, B, .] (analysis)."""
        B = actions.shape[1]
        if hidden is None:
            hidden = self.initial_hidden(B, actions.device)
        enc_h, agg_h = self.split_hidden(hidden)
        x = self.embed(actions, states, rewards if rewards.dim() == 3 else rewards.unsqueeze(-1), prev_states)
        h, _ = self.enc(x, enc_h, None, None)
        feat = self.fc_after_enc(h)
        skip = feat[..., :self.skip_dim]
        agg_out = self.agg(self._agg_input(feat), agg_h, None)[0] if self.agg is not None else feat
        return skip, agg_out


__all__ = ["AGG_TYPES", "ENC_TYPES", "HistoryEncoder", "Posterior"]
