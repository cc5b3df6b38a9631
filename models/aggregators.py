"""History aggregators and the history encoder (SplAgger / AMRL / PEARL / VariBAD / RL2).

Aggregators
-----------
Every aggregator is a module with a flat state tensor [B, state_size]::

    initial_state(batch, device)            -> [B, state_size]
    step(x [B, in_dim], state)              -> (out [B, out_dim], new_state)
    forward(x [T, B, in_dim], state, done_mask [T, B] | None) -> (out [T, B, out_dim], new_state)
    output(state)                           -> out [B, out_dim] (what the state "says" now; the prior
                                               for the initial state)
    reset(state, mask [B])                  -> state with rows in mask set to the initial state

``done_mask[t, b] = True`` means copy b starts a new sequence at step t: its state is reset to
the initial state *before* x[t] is included. So ``forward`` equals::

    for t: state = reset(state, done_mask[t]); out[t], state = step(x[t], state)

``forward`` is vectorised over time: each aggregator is an associative "combine" of per-step
elements, evaluated with a segmented (reset-aware) inclusive parallel scan in log2(T) steps.

Types (``make_aggregator(agg_type, dim, ...)``; ``dim`` = input size):

========== ======================================== ===========================================
type       state                                    output (out_dim)
========== ======================================== ===========================================
sum        sum x                                    sum (dim)
max        running elementwise max (init 0, or      max (dim)
           -999999 with ``max_init_low``)
max_norm   max                                      max / max(||max||_2, 0.1) (dim)
avg        (sum x, count)                           sum / count (dim)
am         (sum of first half, count, max of        [avg half, max half] (dim)
           second half)
weighted_avg input = [values, raw weights] (2k);    sum w x / sum w (k); w = softplus(raw), or
           (sum w x, sum w)                         exp(raw / wavg_temp) if wavg_temp is given
softmax    stable (m, sum e^{x/T - m} x,            softmax(x/T)-weighted mean per dim (dim);
           sum e^{x/T - m})                         T learnable if learn_temps
gauss      input = [mu, raw precision] (2k);        (mu, logvar) concatenated (2k): product of
           (sum mu/s^2, sum 1/s^2), prior N(0, 1)   Gaussians (PEARL), 1/s^2 = softplus(raw)
========== ======================================== ===========================================

``st_estimator=True`` (AMRL): max uses ``MaxST`` (gradient to both arguments) and the
divisions in avg / am / max_norm use ``DivST`` (divisor ignored in the backward pass).

History encoder
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

import itertools
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

AGG_TYPES = ("sum", "max", "max_norm", "avg", "am", "weighted_avg", "softmax", "gauss")
ENC_TYPES = ("gru", "lstm", "transformer", "none")
_NEG = -1e30


class Posterior(NamedTuple):
    mean: torch.Tensor
    logvar: torch.Tensor
    hidden: torch.Tensor


# ----------------------------------------------------------------------------------------
# straight-through ops (AMRL)
class MaxST(torch.autograd.Function):
    """max(a, b) whose backward passes the full gradient to both arguments."""

    @staticmethod
    def forward(ctx, a, b):
        return torch.maximum(a, b)

    @staticmethod
    def backward(ctx, g):
        return g, g


class DivST(torch.autograd.Function):
    """a / b whose backward ignores the divisor: d/da = identity, d/db = 0."""

    @staticmethod
    def forward(ctx, a, b):
        return a / b

    @staticmethod
    def backward(ctx, g):
        return g, None


def segmented_scan(elems: tuple, flags: torch.Tensor, combine) -> tuple:
    """Inclusive scan along dim 0 with resets. elems: tuple of [L, B, ...]; flags [L, B] bool
    (True = the element starts a new segment, nothing before it is combined in).
    ``combine(earlier, later)`` must be associative. Hillis-Steele, log2(L) vectorised steps."""
    L = flags.shape[0]
    d = 1
    while d < L:
        prev = tuple(e[:-d] for e in elems)
        cur = tuple(e[d:] for e in elems)
        comb = combine(prev, cur)
        f = flags[d:].unsqueeze(-1)
        elems = tuple(torch.cat([e[:d], torch.where(f, c, m)], 0) for e, c, m in zip(elems, cur, comb))
        flags = torch.cat([flags[:d], flags[d:] | flags[:-d]], 0)
        d *= 2
    return elems


class Aggregator(nn.Module):
    """Base class: subclasses define part_sizes, lift, combine, identity_parts, output_parts."""

    in_dim: int
    out_dim: int
    part_sizes: list[int]

    def __init__(self, learn_init: bool = False):
        super().__init__()
        self.learn_init = learn_init

    def _setup(self):
        if self.learn_init:
            init = torch.cat(self.identity_parts(1, torch.device("cpu")), -1)
            self.init_state_param = nn.Parameter(init)

    # --- to implement ---------------------------------------------------------------
    def lift(self, x):  # [.., in_dim] -> parts
        raise NotImplementedError

    def combine(self, a, b):
        raise NotImplementedError

    def identity_parts(self, batch, device):
        raise NotImplementedError

    def output_parts(self, parts):
        raise NotImplementedError

    # --- common --------------------------------------------------------------------
    @property
    def state_size(self) -> int:
        return int(sum(self.part_sizes))

    def pack(self, parts) -> torch.Tensor:
        return torch.cat(parts, -1)

    def unpack(self, state):
        return tuple(torch.split(state, self.part_sizes, -1))

    def initial_state(self, batch: int, device=None) -> torch.Tensor:
        device = device if device is not None else self._device()
        if self.learn_init:
            return self.init_state_param.to(device).expand(batch, -1)
        return self.pack(self.identity_parts(batch, device))

    def _device(self):
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def reset(self, state: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        init = self.initial_state(state.shape[0], state.device)
        return torch.where(mask.reshape(-1, 1).bool(), init, state)

    def output(self, state: torch.Tensor) -> torch.Tensor:
        return self.output_parts(self.unpack(state))

    def step(self, x: torch.Tensor, state: torch.Tensor):
        new = self.combine(self.unpack(state), self.lift(x))
        return self.output_parts(new), self.pack(new)

    def forward(self, x: torch.Tensor, state: torch.Tensor, done_mask: torch.Tensor | None = None,
                all_states: bool = False):
        """all_states=True returns the state after every step [T, B, state_size] instead of the last."""
        T, B = x.shape[:2]
        lifted = self.lift(x)
        if done_mask is not None:
            done = done_mask.reshape(T, B).bool()
            init = self.unpack(self.initial_state(B, x.device))
            restarted = self.combine(tuple(p.unsqueeze(0).expand(T, *p.shape) for p in init), lifted)
            d = done.unsqueeze(-1)
            lifted = tuple(torch.where(d, r, l) for r, l in zip(restarted, lifted))
        else:
            done = torch.zeros(T, B, dtype=torch.bool, device=x.device)
        first = self.unpack(state)
        elems = tuple(torch.cat([s.unsqueeze(0), l], 0) for s, l in zip(first, lifted))
        flags = torch.cat([torch.ones(1, B, dtype=torch.bool, device=x.device), done], 0)
        res = segmented_scan(elems, flags, self.combine)
        res = tuple(r[1:] for r in res)
        return self.output_parts(res), (self.pack(res) if all_states else self.pack(tuple(r[-1] for r in res)))


class SumAgg(Aggregator):
    def __init__(self, dim, learn_init=False, **_):
        super().__init__(learn_init)
        self.in_dim = self.out_dim = dim
        self.part_sizes = [dim]
        self._setup()

    def lift(self, x):
        return (x,)

    def combine(self, a, b):
        return (a[0] + b[0],)

    def identity_parts(self, batch, device):
        return (torch.zeros(batch, self.in_dim, device=device),)

    def output_parts(self, p):
        return p[0]


class MaxAgg(Aggregator):
    def __init__(self, dim, st_estimator=False, max_init_low=False, normalise=False, learn_init=False, **_):
        super().__init__(learn_init)
        self.in_dim = self.out_dim = dim
        self.part_sizes = [dim]
        self.st, self.init_value, self.normalise = st_estimator, (-999999.0 if max_init_low else 0.0), normalise
        self._setup()

    def lift(self, x):
        return (x,)

    def combine(self, a, b):
        return (MaxST.apply(a[0], b[0]) if self.st else torch.maximum(a[0], b[0]),)

    def identity_parts(self, batch, device):
        return (torch.full((batch, self.in_dim), self.init_value, device=device),)

    def output_parts(self, p):
        m = p[0]
        if not self.normalise:
            return m
        norm = m.norm(dim=-1, keepdim=True).clamp_min(0.1)
        return DivST.apply(m, norm) if self.st else m / norm


class AvgAgg(Aggregator):
    def __init__(self, dim, st_estimator=False, learn_init=False, **_):
        super().__init__(learn_init)
        self.in_dim = self.out_dim = dim
        self.part_sizes = [dim, 1]
        self.st = st_estimator
        self._setup()

    def lift(self, x):
        return (x, torch.ones_like(x[..., :1]))

    def combine(self, a, b):
        return (a[0] + b[0], a[1] + b[1])

    def identity_parts(self, batch, device):
        return (torch.zeros(batch, self.in_dim, device=device), torch.zeros(batch, 1, device=device))

    def output_parts(self, p):
        cnt = p[1].clamp_min(1.0)
        return DivST.apply(p[0], cnt) if self.st else p[0] / cnt


class AvgMaxAgg(Aggregator):
    """'am': the first dim//2 units are averaged, the rest max-aggregated."""

    def __init__(self, dim, st_estimator=False, max_init_low=False, learn_init=False, **_):
        super().__init__(learn_init)
        self.in_dim = self.out_dim = dim
        self.k = dim // 2
        self.part_sizes = [self.k, 1, dim - self.k]
        self.st, self.init_value = st_estimator, (-999999.0 if max_init_low else 0.0)
        self._setup()

    def lift(self, x):
        return (x[..., :self.k], torch.ones_like(x[..., :1]), x[..., self.k:])

    def combine(self, a, b):
        m = MaxST.apply(a[2], b[2]) if self.st else torch.maximum(a[2], b[2])
        return (a[0] + b[0], a[1] + b[1], m)

    def identity_parts(self, batch, device):
        return (torch.zeros(batch, self.k, device=device), torch.zeros(batch, 1, device=device),
                torch.full((batch, self.in_dim - self.k), self.init_value, device=device))

    def output_parts(self, p):
        cnt = p[1].clamp_min(1.0)
        avg = DivST.apply(p[0], cnt) if self.st else p[0] / cnt
        return torch.cat([avg, p[2]], -1)


class WeightedAvgAgg(Aggregator):
    """Input [values (k), raw weights (k)]; w = softplus(raw). Output sum w x / sum w."""

    def __init__(self, dim, learn_init=False, **_):
        super().__init__(learn_init)
        if dim % 2:
            raise ValueError(f"weighted_avg needs an even input dim (values + weights), got {dim}")
        self.in_dim, self.out_dim = dim, dim // 2
        self.part_sizes = [self.out_dim, self.out_dim]
        self._setup()

    def lift(self, x):
        v, raw = x[..., :self.out_dim], x[..., self.out_dim:]
        w = F.softplus(raw)
        return (w * v, w)

    def combine(self, a, b):
        return (a[0] + b[0], a[1] + b[1])

    def identity_parts(self, batch, device):
        z = torch.zeros(batch, self.out_dim, device=device)
        return (z, z.clone())

    def output_parts(self, p):
        return p[0] / p[1].clamp_min(1e-8)


class SoftmaxAgg(Aggregator):
    """Softmax-weighted mean over time, per unit; scores = x / T (``weights_in_input=False``) or
    raw / T with input [values, raw] (``weights_in_input=True``, = weighted_avg with wavg_temp).
    Stable running (max score m, sum e^{s-m} x, sum e^{s-m})."""

    def __init__(self, dim, temp: float = 1.0, learn_temps: bool = True, weights_in_input: bool = False,
                 learn_init=False, **_):
        super().__init__(learn_init)
        self.wi = weights_in_input
        if self.wi and dim % 2:
            raise ValueError(f"weighted softmax needs an even input dim, got {dim}")
        self.in_dim = dim
        self.out_dim = dim // 2 if self.wi else dim
        self.part_sizes = [self.out_dim] * 3
        log_t = torch.tensor(math.log(temp), dtype=torch.float32)
        if learn_temps:
            self.log_temp = nn.Parameter(log_t)
        else:
            self.register_buffer("log_temp", log_t)
        self._setup()

    def lift(self, x):
        if self.wi:
            v, s = x[..., :self.out_dim], x[..., self.out_dim:]
        else:
            v = s = x
        s = s / self.log_temp.exp()
        return (s, v, torch.ones_like(v))

    def combine(self, a, b):
        m = torch.maximum(a[0], b[0])
        ea, eb = (a[0] - m).exp(), (b[0] - m).exp()
        return (m, a[1] * ea + b[1] * eb, a[2] * ea + b[2] * eb)

    def identity_parts(self, batch, device):
        z = torch.zeros(batch, self.out_dim, device=device)
        return (torch.full_like(z, _NEG), z, z.clone())

    def output_parts(self, p):
        return p[1] / p[2].clamp_min(1e-30)


class GaussAgg(Aggregator):
    """PEARL product of Gaussians. Input [mu (k), raw precision (k)], precision = softplus(raw);
    starts from the prior N(0, 1). Output cat(mu, logvar) (2k)."""

    def __init__(self, dim, learn_init=False, **_):
        super().__init__(learn_init)
        if dim % 2:
            raise ValueError(f"gauss needs an even input dim (mu + precision), got {dim}")
        self.in_dim = self.out_dim = dim
        self.k = dim // 2
        self.part_sizes = [self.k, self.k]
        self._setup()

    def lift(self, x):
        mu, raw = x[..., :self.k], x[..., self.k:]
        prec = F.softplus(raw) + 1e-6
        return (mu * prec, prec)

    def combine(self, a, b):
        return (a[0] + b[0], a[1] + b[1])

    def identity_parts(self, batch, device):
        return (torch.zeros(batch, self.k, device=device), torch.ones(batch, self.k, device=device))

    def output_parts(self, p):
        prec = p[1].clamp_min(1e-8)
        return torch.cat([p[0] / prec, -prec.log()], -1)


def make_aggregator(agg_type: str, dim: int, st_estimator: bool = False, max_init_low: bool = False,
                    softmax_temp: float = 1.0, learn_temps: bool = True, wavg_temp: float | None = None,
                    learn_init: bool = False) -> Aggregator:
    kw = {"learn_init": learn_init}
    if agg_type == "sum":
        return SumAgg(dim, **kw)
    if agg_type in ("max", "max_norm"):
        return MaxAgg(dim, st_estimator=st_estimator, max_init_low=max_init_low,
                      normalise=agg_type == "max_norm", **kw)
    if agg_type == "avg":
        return AvgAgg(dim, st_estimator=st_estimator, **kw)
    if agg_type == "am":
        return AvgMaxAgg(dim, st_estimator=st_estimator, max_init_low=max_init_low, **kw)
    if agg_type == "weighted_avg":
        if wavg_temp is not None:
            return SoftmaxAgg(dim, temp=wavg_temp, learn_temps=learn_temps, weights_in_input=True, **kw)
        return WeightedAvgAgg(dim, **kw)
    if agg_type == "softmax":
        return SoftmaxAgg(dim, temp=softmax_temp, learn_temps=learn_temps, **kw)
    if agg_type == "gauss":
        return GaussAgg(dim, **kw)
    raise ValueError(f"unknown aggregator {agg_type!r}; choose from {AGG_TYPES}")


# ----------------------------------------------------------------------------------------
# sequential encoders: state [B, S];
# forward(x [T,B,in], state, done [T,B] | None, init [B,S], all_states) -> (out [T,B,F], state [B,S]
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


def _mlp(sizes, last_linear: bool):
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if not (last_linear and i == len(sizes) - 2):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


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


__all__ = ["AGG_TYPES", "ENC_TYPES", "Aggregator", "DivST", "HistoryEncoder", "MaxST", "Posterior", "make_aggregator",
           "segmented_scan"]
