"""History aggregators (SplAgger / AMRL / PEARL) and the segmented scan they run on.

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

The history encoder that uses them: ``models/history_encoder.py``; its sequence models:
``models/sequence_encoders.py``.
"""
from __future__ import annotations

import math
import torch
import torch.nn.functional as F
from torch import nn

AGG_TYPES = ("sum", "max", "max_norm", "avg", "am", "weighted_avg", "softmax", "gauss")
_NEG = -1e30


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


__all__ = ["AGG_TYPES", "Aggregator", "DivST", "MaxST", "make_aggregator", "segmented_scan"]
