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


class _GRUSequence(torch.autograd.Function):
    """The hidden states of S members' GRUs over whole sequences from a zero state, with the
    backward pass through time written out: per step one batched matmul and a few elementwise
    ops (autograd's would record ~25 per step), and the hidden weights' gradient as ONE matmul
    over all steps at the end. Same mathematics as torch's GRU (r, z, n gates); float rounding
    of its own (``h' = lerp(n, h, z)``; tanh as 2 sigmoid(2x) - 1, four ops that take half the
    time of this torch build's tanh on [8, 25, 64])."""

    @staticmethod
    def forward(ctx, gi, w_hh, b_hh):
        S, T, B, H3 = gi.shape
        H = H3 // 3
        hs = gi.new_zeros(T + 1, S, B, H)   # time-major: every step's slice is contiguous
        gh = gi.new_empty(T, S, B, H3)      # h W_hh^T + b_hh of every step
        rz = gi.new_empty(T, S, B, 2 * H)   # the r and z gates
        n = gi.new_empty(T, S, B, H)
        w_t, b = w_hh.transpose(1, 2), b_hh[:, None]
        gi_rz, gi_n = gi[..., :2 * H].unbind(1), gi[..., 2 * H:].unbind(1)
        gh_rz, gh_n, ghs = gh[..., :2 * H].unbind(0), gh[..., 2 * H:].unbind(0), gh.unbind(0)
        r, z, rzs = rz[..., :H].unbind(0), rz[..., H:].unbind(0), rz.unbind(0)
        h, ns = hs.unbind(0), n.unbind(0)
        for t in range(T):
            torch.baddbmm(b, h[t], w_t, out=ghs[t])
            torch.add(gi_rz[t], gh_rz[t], out=rzs[t]).sigmoid_()
            torch.addcmul(gi_n[t], r[t], gh_n[t], out=ns[t]).mul_(2).sigmoid_().mul_(2).sub_(1)  # tanh(x) = 2 sigmoid(2x) - 1
            torch.lerp(ns[t], h[t], z[t], out=h[t + 1])   # n + z * (h - n)
        ctx.save_for_backward(w_hh, hs, gh, rz, n)
        return hs.transpose(0, 1)                           # [S, T+1, B, H], the zero state first

    @staticmethod
    def backward(ctx, grad):
        w_hh, hs, gh, rz, n = ctx.saved_tensors
        T, S, B, H = n.shape
        dgh = gh.new_empty(S, T, B, 3 * H)  # d(h W_hh^T + b_hh); member-major for the weight gradient
        drz = torch.empty_like(rz)           # d(r), d(z) before the sigmoids
        da = gh.new_empty(S, T, B, H)        # d(the pre-tanh sum) = d(the input gate n)
        g = grad.unbind(1)
        dgh_t, dgh_rz, dgh_n, da_t = dgh.unbind(1), dgh[..., :2 * H].unbind(1), dgh[..., 2 * H:].unbind(1), da.unbind(1)
        r, z, dr, dz = rz[..., :H].unbind(0), rz[..., H:].unbind(0), drz[..., :H].unbind(0), drz[..., H:].unbind(0)
        h, ns, rzs, drzs, gh_n = hs.unbind(0), n.unbind(0), rz.unbind(0), drz.unbind(0), gh[..., 2 * H:].unbind(0)
        dh = g[T]
        for t in range(T - 1, -1, -1):
            dn = torch.addcmul(dh, dh, z[t], value=-1)                     # dh * (1 - z)
            torch.mul(dh, h[t] - ns[t], out=dz[t])
            torch.ops.aten.tanh_backward.grad_input(dn, ns[t], grad_input=da_t[t])
            torch.mul(da_t[t], gh_n[t], out=dr[t])
            torch.mul(da_t[t], r[t], out=dgh_n[t])
            torch.ops.aten.sigmoid_backward.grad_input(drzs[t], rzs[t], grad_input=dgh_rz[t])
            dh = torch.addcmul(g[t], dh, z[t]).baddbmm_(dgh_t[t], w_hh)  # to h_{t-1}: direct + through W_hh
        d_w = torch.bmm(dgh.view(S, T * B, 3 * H).transpose(1, 2), hs[:T].transpose(0, 1).reshape(S, T * B, H))
        d_b = dgh.sum((1, 2))
        dgh[..., 2 * H:] = da                # the input gates' gradient: r, z as for h's, n before r *
        return dgh, d_w, d_b


def gru_sequence(gi: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor) -> torch.Tensor:
    """S members' GRU hidden states [S, T+1, B, H] (the zero state first) from the input gates of
    every step ``gi`` [S, T, B, 3H] (x W_ih^T + b_ih, computed by the caller in one product) and
    the hidden weights w_hh [S, 3H, H], b_hh [S, 3H]; differentiable in all three."""
    return _GRUSequence.apply(gi, w_hh, b_hh)


def plain_ops() -> SimpleNamespace:
    """The one-member versions: the tensors of the single module and the plain ops."""
    return SimpleNamespace(pick=lambda ts: ts[0], linear=F.linear, gru_cell=torch.gru_cell, row=lambda t: t)


def member_ops() -> SimpleNamespace:
    """The stacked versions. ``row`` turns a per-member vector [S, d] into [S, 1, d], which
    broadcasts over the member's batch as the plain [d] does over the batch."""
    return SimpleNamespace(pick=stack, linear=linear, gru_cell=gru_cell, row=lambda t: t.unsqueeze(1))


def ops_for(n_members: int) -> SimpleNamespace:
    return plain_ops() if n_members == 1 else member_ops()
