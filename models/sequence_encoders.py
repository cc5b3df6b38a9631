"""Sequence models of the history encoder, one interface: state [B, S];
forward(x [T, B, in], state, done [T, B] | None, init [B, S], all_states) -> (out [T, B, F], state [B, S]
or, with all_states, the state after every step [T, B, S]).

    gru, lstm (optionally initialised to act like a sum aggregator), none (tanh Linear), transformer
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ENC_TYPES = ("gru", "lstm", "transformer", "none")

# or, with all_states, the state after every step [T,B,S])
def _loop(fn, x, state, done, init, all_states=False):
    outs, states = [], []
    for t in range(x.shape[0]):
        if done is not None:
            state = torch.where(done[t].unsqueeze(-1), init, state)
        o, state = fn(x[t:t + 1], state)
        outs.append(o)
        states.append(state)
    return torch.cat(outs, 0), (torch.stack(states) if all_states else state)


class _GRUEnc(nn.Module):
    def __init__(self, in_dim, hidden):
        super().__init__()
        self.rnn = nn.GRU(in_dim, hidden)
        self.out_dim = self.state_size = hidden
        for name, p in self.rnn.named_parameters():
            if "bias" in name:
                nn.init.zeros_(p)
            else:
                nn.init.orthogonal_(p)

    def _run(self, x, state):
        out, h = self.rnn(x, state.unsqueeze(0).contiguous())
        return out, h[0]

    def forward(self, x, state, done, init, all_states=False):
        if done is None or not bool(done.any()):
            out, h = self._run(x, state)
            return out, (out if all_states else h)
        return _loop(self._run, x, state, done, init, all_states)

    def feature(self, state):
        return state


class _LSTMEnc(nn.Module):
    def __init__(self, in_dim, hidden, invariant_init=False, eps=1e-4):
        super().__init__()
        self.rnn = nn.LSTM(in_dim, hidden)
        self.hidden = hidden
        self.out_dim, self.state_size = hidden, 2 * hidden
        if invariant_init:  # act as a sum aggregator at init: forget = input gate = 1, no recurrence
            with torch.no_grad():
                big = math.log((1 - eps) / eps)
                self.rnn.weight_hh_l0.zero_()
                self.rnn.bias_hh_l0.zero_()
                self.rnn.bias_ih_l0.zero_()
                self.rnn.bias_ih_l0[: 2 * hidden] = big  # gate order i, f, g, o
                self.rnn.weight_ih_l0[: 2 * hidden].zero_()

    def _run(self, x, state):
        h, c = state[:, :self.hidden], state[:, self.hidden:]
        out, (h, c) = self.rnn(x, (h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()))
        return out, torch.cat([h[0], c[0]], -1)

    def forward(self, x, state, done, init, all_states=False):
        if not all_states and (done is None or not bool(done.any())):
            return self._run(x, state)
        return _loop(self._run, x, state, done, init, all_states)

    def feature(self, state):
        return state[..., :self.hidden]


class _LinearEnc(nn.Module):
    """'none': tanh(Linear(x)) per step; the state keeps the last output (for the prior)."""

    def __init__(self, in_dim, hidden):
        super().__init__()
        self.fc = nn.Linear(in_dim, hidden)
        self.out_dim = self.state_size = hidden

    def forward(self, x, state, done, init, all_states=False):
        out = torch.tanh(self.fc(x))
        return out, (out if all_states else out[-1])

    def feature(self, state):
        return state


class _TransformerEnc(nn.Module):
    """Small causal transformer over the last ``mem`` steps. State = [token buffer (mem*tok),
    n_valid, t_abs, last output (tok)]; tokens carry sinusoidal encodings of absolute time."""

    def __init__(self, in_dim, token_size=16, num_layers=2, num_heads=2, mem=256):
        super().__init__()
        self.tok, self.mem, self.heads = token_size, mem, num_heads
        self.proj = nn.Linear(in_dim, token_size)
        layer = nn.TransformerEncoderLayer(token_size, num_heads, dim_feedforward=4 * token_size, dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.out_dim = token_size
        self.state_size = mem * token_size + 2 + token_size

    def _pe(self, pos):  # pos [B, T] float -> [B, T, tok]
        half = self.tok // 2
        freq = torch.exp(-math.log(10000.0) * torch.arange(half, device=pos.device) / max(half, 1))
        ang = pos.unsqueeze(-1) * freq
        pe = torch.cat([ang.sin(), ang.cos()], -1)
        return F.pad(pe, (0, self.tok - pe.shape[-1]))

    def _run(self, x, state):
        T, B = x.shape[:2]
        M, k = self.mem, self.tok
        buf = state[:, :M * k].reshape(B, M, k)
        nv, tabs = state[:, M * k], state[:, M * k + 1]
        pos = tabs.unsqueeze(1) + torch.arange(T, device=x.device, dtype=x.dtype)
        tokens = self.proj(x).transpose(0, 1) + self._pe(pos)
        seq = torch.cat([buf, tokens], 1)
        L = M + T
        idx = torch.arange(L, device=x.device)
        valid = torch.cat([idx[None, :M] >= (M - nv[:, None]), torch.ones(B, T, dtype=torch.bool, device=x.device)], 1)
        allowed = (idx[None, :, None] >= idx[None, None, :]) & (valid[:, None, :] | (idx[:, None] == idx[None, :])[None])
        mask = (~allowed).repeat_interleave(self.heads, 0)
        out = self.encoder(seq, mask=mask)[:, M:]
        new_buf = seq[:, -M:].reshape(B, M * k)
        new_state = torch.cat([new_buf, (nv + T).clamp_max(M)[:, None], (tabs + T)[:, None], out[:, -1]], 1)
        return out.transpose(0, 1), new_state

    def forward(self, x, state, done, init, all_states=False):
        if not all_states and (done is None or not bool(done.any())):
            return self._run(x, state)
        return _loop(self._run, x, state, done, init, all_states)

    def feature(self, state):
        return state[..., -self.tok:]
