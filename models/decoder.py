"""VAE decoders: reward p(r|s,a,s',m), state p(s'|s,a,m), task p(task|m).

The ELBO decodes every (posterior k, step d) pair. ``pairs`` evaluates the decoder on all
K x D pairs without materialising the [K, D, B, z + inputs] input: the first layer is
linear in its concatenated input, so W [z; x] + b = (W_z z)[k] + (W_x x + b)[d] is
computed as K + D small matmuls and one broadcast add (same numbers, a fraction of the
FLOPs and memory).

``pairs_mse`` goes further for training: it returns only the weighted sum of the squared
errors over all pairs, sum_{k,d,b} w[k,d,b] mean_o (net(z_k, x_d)_o - y_d,o)^2, evaluated in
chunks of posteriors small enough to stay in cache, and computes its gradients in the
same pass (the loss is linear in w, so they need no upstream value until backward, where
they are scaled by it). The [K, D, B, hidden] activations are never held in full: the
ELBO of a 300-step trajectory would otherwise allocate, fill, and page-fault through
hundreds of MB per update. Same mathematics as summing ``pairs``' errors; only the order of
the float additions differs (values agree to float32 rounding, not bit for bit).
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import threading

import torch
import torch.nn.functional as F
from torch import nn

from models.common import FeatureExtractor, mlp

# (posterior, step, trajectory) rows per chunk of pairs_mse: on a CPU a few thousand keep one
# chunk's activations in cache; on an accelerator large chunks keep the kernel launches few
PAIR_CHUNK_ROWS = {"cpu": 8192, "other": 1 << 20}
_threshold_backward_ = torch.ops.aten.threshold_backward.grad_input
_add_relu_ = torch.ops.aten._add_relu.out  # fused add + relu (CPU kernel)


def _pairs(net: nn.Sequential, latent: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """net(cat(latent[k], inputs[d])) for all k, d: latent [K, B, z], inputs [D, B, e] ->
    [K, D, B, out]. ``net`` starts with Linear(z + e, h) and an activation."""
    first, z = net[0], latent.shape[-1]
    h = F.linear(latent, first.weight[:, :z])[:, None] + F.linear(inputs, first.weight[:, z:], first.bias)[None]
    return net[2:](net[1](h))


def _tail(net: nn.Sequential) -> list[nn.Linear]:
    """The linear layers after the first one of an ``mlp`` of ReLUs ending in a linear layer."""
    mods = list(net)
    if not (len(mods) >= 3 and len(mods) % 2 == 1 and all(isinstance(m, nn.ReLU) for m in mods[1::2])
            and all(isinstance(m, nn.Linear) and m.bias is not None for m in mods[0::2])):
        raise ValueError("pairs_mse needs Linear, ReLU, (Linear, ReLU)*, Linear")
    return mods[2::2]


def _chunks(weight: torch.Tensor, rows: int):
    """(k0, k1, d0, d1) blocks of at most ``rows`` rows (or one posterior) covering every pair of
    nonzero weight; pairs outside them (padding, masked decodes) add nothing to the sum or the
    gradients and are skipped."""
    K, D, B = weight.shape
    nz = weight.ne(0).any(2)                                       # [K, D]
    live = nz.any(1)
    first = nz.float().argmax(1)
    last = D - nz.flip(1).float().argmax(1)
    spans = torch.stack([live.long(), first, last], 1).tolist()    # one host transfer
    kc = max(1, rows // max(D * B, 1))
    for k0 in range(0, K, kc):
        block = [sp for sp in spans[k0:k0 + kc] if sp[0]]
        if not block:
            continue
        lo, hi = min(sp[1] for sp in block), max(sp[2] for sp in block)
        n_chunks = -(-(hi - lo) * B * min(kc, K - k0) // rows)
        step = -(-(hi - lo) // n_chunks)
        for d0 in range(lo, hi, step):
            yield k0, min(K, k0 + kc), d0, min(hi, d0 + step)


def _pairs_mse_pass(a, c, target, weight, weights, biases, need_grad: bool):
    """The chunked forward (and, with ``need_grad``, backward) of ``pairs_mse``. a: [K, B, h]
    (W_z z, no bias), c: [D, B, h] (W_x x + b), target [D, B, out], weight [K, D, B]; the net
    after the first layer is relu, then (linear, relu)*, linear with ``weights``/``biases``.
    Returns the sum and, with ``need_grad``, the gradients of a, c, weights and biases.

    On a CPU the chunks are dealt alternately to two groups, each summed on its own, and the two
    partial sums added at the end; the second group is decoded on a helper thread (a second core
    decodes while the first does) unless ``pairs_on_helper(False)`` is in effect on the calling
    thread. The numbers depend on the shapes only, not on the scheduling or the number of cores."""
    cpu = a.device.type == "cpu"
    rows = max(PAIR_CHUNK_ROWS["cpu" if cpu else "other"], a.shape[1])
    chunks = list(_chunks(weight, rows))
    if not cpu or len(chunks) < 2:
        total, grads = _pairs_mse_group(chunks, rows, a, c, target, weight, weights, biases, need_grad)
    else:
        args = (rows, a, c, target, weight, weights, biases, need_grad)
        other = _helper().submit(_pairs_mse_group, chunks[1::2], *args) if getattr(_LOCAL, "helper", True) else None
        total, grads = _pairs_mse_group(chunks[0::2], *args)
        total_1, grads_1 = other.result() if other is not None else _pairs_mse_group(chunks[1::2], *args)
        with torch.no_grad():
            total = total + total_1
            if need_grad:
                for mine, theirs in zip([grads[0], grads[1], *grads[2], *grads[3]],
                                        [grads_1[0], grads_1[1], *grads_1[2], *grads_1[3]]):
                    mine += theirs
    total = total / target.shape[-1]
    return (total, grads) if need_grad else (total, None)


_HELPER = None
_LOCAL = threading.local()


@contextlib.contextmanager
def pairs_on_helper(enabled: bool):
    """Within the block, this thread's ``pairs_mse`` decodes its second group of chunks on the
    helper thread (True, the default) or itself (False: when the other core is busy anyway, a
    third thread only takes turns with the busy one). Same numbers either way."""
    before = getattr(_LOCAL, "helper", True)
    _LOCAL.helper = enabled
    try:
        yield
    finally:
        _LOCAL.helper = before


def _helper():
    """The one worker thread that decodes the second group of chunks (made on first use)."""
    global _HELPER
    if _HELPER is None:
        _HELPER = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pairs_mse")
    return _HELPER


@torch.no_grad()  # gradients are formed by hand (grad mode is per thread: also on the helper)
def _pairs_mse_group(chunks, rows: int, a, c, target, weight, weights, biases, need_grad: bool):
    """Unscaled sum (and gradients) of ``_pairs_mse_pass`` over the given chunks, in order."""
    K, B, h = a.shape
    D, out = c.shape[0], target.shape[-1]
    cpu = a.device.type == "cpu"
    DB = max(D * B, 1)
    R = rows // DB * DB if rows >= DB else rows + B  # rows of the largest chunk
    widths = [h] + [w.shape[0] for w in weights[:-1]]
    acts_buf = [a.new_empty(R * w) for w in widths]                # post-relu input of each tail layer
    grad_buf = [a.new_empty(R * w) for w in widths] if need_grad else []
    y_buf = a.new_empty(R * out)
    w_t = [w.t() for w in weights]
    total = a.new_zeros(())
    grads = None
    if need_grad:
        g_a, g_c = a.new_zeros(a.shape), c.new_zeros(c.shape)
        g_w, g_b = [w.new_zeros(w.shape) for w in weights], [b.new_zeros(b.shape) for b in biases]
        grads = (g_a, g_c, g_w, g_b)
    for k0, k1, d0, d1 in chunks:
        kn, dn = k1 - k0, d1 - d0
        n = kn * dn * B
        acts = [buf[:n * w].view(n, w) for buf, w in zip(acts_buf, widths)]
        first = acts[0].view(kn, dn, B, h)
        if cpu:  # relu(a + c) in one pass
            _add_relu_(a[k0:k1, None], c[None, d0:d1], out=first)
        else:
            torch.add(a[k0:k1, None], c[None, d0:d1], out=first).clamp_min_(0)
        for i in range(len(weights) - 1):
            torch.addmm(biases[i], acts[i], w_t[i], out=acts[i + 1]).clamp_min_(0)
        y = torch.addmm(biases[-1], acts[-1], w_t[-1], out=y_buf[:n * out].view(n, out))
        diff = y.view(kn, dn, B, out).sub_(target[d0:d1])
        wd = diff * weight[k0:k1, d0:d1, :, None]
        total += torch.dot(wd.view(-1), diff.view(-1))
        if not need_grad:
            continue
        g = wd.mul_(2.0 / out).view(n, out)                        # d(sum) / d(prediction)
        for i in range(len(weights) - 1, -1, -1):                  # acts[i] = relu(input of tail layer i)
            g_w[i].addmm_(g.t(), acts[i])
            g_b[i] += g.sum(0)
            g_in = grad_buf[i][:n * widths[i]].view(n, widths[i])
            _threshold_backward_(torch.mm(g, weights[i], out=g_in), acts[i], 0, grad_input=g_in)
            g = g_in
        g = g.view(kn, dn, B, h)
        g_a[k0:k1] += g.sum(1)
        g_c[d0:d1] += g.sum(0) if kn > 1 else g[0]
    return total, grads


class _PairsMSE(torch.autograd.Function):
    """sum of weighted pair errors; gradients computed in forward, scaled in backward."""

    @staticmethod
    def forward(ctx, a, c, target, weight, n_layers, *params):
        weights, biases = list(params[:n_layers]), list(params[n_layers:])
        total, grads = _pairs_mse_pass(a, c, target, weight, weights, biases, need_grad=True)
        g_a, g_c, g_w, g_b = grads
        ctx.save_for_backward(g_a, g_c, *g_w, *g_b)
        return total

    @staticmethod
    def backward(ctx, grad):
        g_a, g_c, *g_params = ctx.saved_tensors
        return (g_a * grad, g_c * grad, None, None, None, *(g * grad for g in g_params))


def pairs_mse(net: nn.Sequential, latent: torch.Tensor, inputs: torch.Tensor, target: torch.Tensor,
              weight: torch.Tensor) -> torch.Tensor:
    """sum_{k,d,b} weight[k,d,b] * mean_o (net(cat(latent[k,b], inputs[d,b]))_o - target[d,b,o])^2
    (a scalar) for latent [K, B, z], inputs [D, B, e], target [D, B, out], weight [K, D, B],
    without materialising the [K, D, B, hidden] activations (see the module docstring)."""
    first, z = net[0], latent.shape[-1]
    tail = _tail(net)
    a = F.linear(latent, first.weight[:, :z])
    c = F.linear(inputs, first.weight[:, z:], first.bias)
    weights, biases = [m.weight for m in tail], [m.bias for m in tail]
    target, weight = target.detach().to(a.dtype), weight.detach().to(a.dtype)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (a, c, *weights, *biases)):
        return _PairsMSE.apply(a, c, target, weight, len(weights), *weights, *biases)
    return _pairs_mse_pass(a, c, target, weight, weights, biases, need_grad=False)[0]


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

    def pairs_mse(self, latent, next_state, prev_state, action, target, weight) -> torch.Tensor:
        """sum_{k,d,b} weight[k,d,b] (pairs(...)[k,d,b] - target[d,b])^2 (target [D, B, 1]), see ``pairs_mse``."""
        return pairs_mse(self.net, latent, self._inputs(next_state, prev_state, action), target, weight)


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
        return _pairs(self.net, latent, self._inputs(prev_state, action))

    def pairs_mse(self, latent, prev_state, action, target, weight) -> torch.Tensor:
        """sum_{k,d,b} weight[k,d,b] mean_o (pairs(...)[k,d,b,o] - target[d,b,o])^2, see ``pairs_mse``."""
        return pairs_mse(self.net, latent, self._inputs(prev_state, action), target, weight)

    def _inputs(self, prev_state, action) -> torch.Tensor:
        return torch.cat([self.state_encoder(prev_state), self.action_encoder(action)], -1)


class TaskDecoder(nn.Module):
    """Task description (regression) or task-id logits from the latent."""

    def __init__(self, latent_dim: int, layers: list[int], out_dim: int):
        super().__init__()
        self.net = mlp(latent_dim, layers, "relu", out_dim)

    def forward(self, latent) -> torch.Tensor:
        return self.net(latent)
