"""Ops over *members*: S independent copies of one network (one per seed of a ``--num_seeds``
run), evaluated as one computation on parameters stacked along a leading member dimension.

    w = stack([p1.weight, p2.weight, ...])      # [S, out, in]
    y = linear(x, w, b)                           # x [S, B, in] -> [S, B, out]

Each op is bit for bit the per-member op (checked in tests/test_multi_seed.py): ``linear`` is
one ``baddbmm`` where that rounds exactly as ``F.linear`` (else a loop over members), and
``gru_cell`` is ``torch.gru_cell`` written out in the order that reproduces its rounding (see
its note on block sizes). With
one member the callers use the plain ops themselves (``plain_ops``), so a single run is untouched.
"""
from __future__ import annotations

import functools
from types import SimpleNamespace

import torch
import torch.nn.functional as F


def stack(tensors) -> torch.Tensor:
    """One member tensor per member -> [S, ...] (a copy, without autograd history)."""
    return torch.stack([t.detach() for t in tensors])


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear`` of every member: x [S, B, in], weight [S, out, in], bias [S, out]. One
    ``baddbmm`` where, for this shape, it rounds exactly as ``F.linear`` does; otherwise a loop of
    ``F.linear`` over the members (the BLAS picks kernels by shape: e.g. a width-1 output is a
    matrix-vector product for ``F.linear`` but not inside ``bmm``)."""
    if _batched_is_exact(tuple(x.shape), weight.shape[1], bias is not None, x.dtype, x.device):
        if bias is None:
            return torch.bmm(x, weight.transpose(1, 2))
        return torch.baddbmm(bias[:, None], x, weight.transpose(1, 2))
    return torch.stack([F.linear(x[s], weight[s], None if bias is None else bias[s]) for s in range(x.shape[0])])


@functools.lru_cache(maxsize=None)
def _batched_is_exact(x_shape: tuple, out: int, bias: bool, dtype, device) -> bool:
    """Whether the batched product of this shape equals the per-member ``F.linear`` bit for bit,
    probed once on random numbers from a private generator (the kernel a BLAS runs depends on the
    shape only: one that rounds the same on random data does on all data)."""
    if len(x_shape) != 3:
        return False
    g = torch.Generator(device=device).manual_seed(0)
    S, _, fan_in = x_shape
    x = torch.randn(x_shape, generator=g, dtype=dtype, device=device)
    w = torch.randn(S, out, fan_in, generator=g, dtype=dtype, device=device)
    b = torch.randn(S, out, generator=g, dtype=dtype, device=device) if bias else None
    batched = torch.baddbmm(b[:, None], x, w.transpose(1, 2)) if bias else torch.bmm(x, w.transpose(1, 2))
    plain = torch.stack([F.linear(x[s], w[s], None if b is None else b[s]) for s in range(S)])
    return torch.equal(batched, plain)


def gru_cell(x: torch.Tensor, h: torch.Tensor, w_ih, w_hh, b_ih, b_hh) -> torch.Tensor:
    """``torch.gru_cell`` of every member: x [S, B, in], h [S, B, H], weights [S, 3H, .]; the
    same ops in the same order as ATen's CPU cell (in-place on the gate chunks), so the same
    rounding. Elementwise kernels run over [S * B * H] at once; where a member's block B * H is
    not a multiple of the SIMD width, an element may fall in the scalar tail in one run and in a
    vector lane in the other (1 ulp apart). Every preset's sizes are multiples of it."""
    ir, iz, inn = linear(x, w_ih, b_ih).unsafe_chunk(3, -1)
    hr, hz, hn = linear(h, w_hh, b_hh).unsafe_chunk(3, -1)
    r = hr.add_(ir).sigmoid_()
    z = hz.add_(iz).sigmoid_()
    n = inn.add(hn.mul_(r)).tanh_()
    return (h - n).mul_(z).add_(n)


def plain_ops() -> SimpleNamespace:
    """The one-member versions: the tensors of the single module and the plain ops."""
    return SimpleNamespace(pick=lambda ts: ts[0], linear=F.linear, gru_cell=torch.gru_cell, row=lambda t: t)


def member_ops() -> SimpleNamespace:
    """The stacked versions. ``row`` turns a per-member vector [S, d] into [S, 1, d], which
    broadcasts over the member's batch as the plain [d] does over the batch."""
    return SimpleNamespace(pick=stack, linear=linear, gru_cell=gru_cell, row=lambda t: t.unsqueeze(1))


def ops_for(n_members: int) -> SimpleNamespace:
    return plain_ops() if n_members == 1 else member_ops()
