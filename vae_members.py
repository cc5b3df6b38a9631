"""The VAE updates of the S seeds of a ``--num_seeds`` run as ONE computation.

Each seed's overlapped VAE update (``VAE.update``: batches drawn from the seed's own buffer with
its own generator) is handed to ``StackedUpdates`` instead of the seed's thread. Once every seed
has handed in its batches, one job on one thread runs, per update step, the ELBO of all seeds
on parameters stacked along a member dimension, and then each seed's own clipping and optimiser
step. The seeds' trajectories are laid side by side along the batch dimension (seed-major,
[T, S * B, .]), so the ELBO itself is ``VAE``'s own code (``StackedVAE`` borrows it); only the
layers with parameters (``StackedEncoder``, ``StackedMLP``) see the member dimension, and the
reductions are per seed (``_per_run``). A seed's gradient is that of its own loss: the total
backpropagated is the sum of the seeds' losses, and no op mixes seeds.

Same mathematics as separate updates, not the same rounding: the GRU is
``models.members.gru_sequence`` (its own backward through time; ``torch.nn.GRU`` runs a fused
kernel) and the linear layers are batched matmuls. Built for the
GRU encoder with a multi-head reward decoder (GridNavi-style) and no subsampling, truncated
BPTT, pretraining, frozen VAE or reward-target scaling; ``stackable`` says which, and the
others keep one update per seed (bit for bit a single run's).
"""
from __future__ import annotations

import concurrent.futures
import threading

import torch

from algorithms.ppo import MergedSteps
from models import members
from models.common import Posterior
from models.encoder import RNNEncoder
from vae import VAE


def stackable(vae: VAE) -> str | None:
    """None if this seed's VAE updates can run stacked, else why not."""
    cfg = vae.cfg
    reasons = [
        (not vae.overlap, "VAE updates not overlapped (--vae_update_overlap false)"),
        (vae.frozen, "--freeze_vae"),
        (type(vae.encoder) is not RNNEncoder, "not the GRU encoder"),
        (cfg.tbptt_stepsize is not None, "--tbptt_stepsize"),
        (bool(cfg.pretrain_len), "--pretrain_len"),
        (bool(cfg.vae_subsample_elbos or cfg.vae_subsample_decodes), "ELBO subsampling"),
        (vae.state_decoder is not None or vae.task_decoder is not None, "a state or task decoder"),
        (vae.reward_decoder is None or not cfg.multihead_for_reward, "not a multi-head reward decoder"),
        (bool(cfg.normalise_rew_targets), "--normalise_rew_targets"),
    ]
    why = [text for bad, text in reasons if bad]
    return "; ".join(why) if why else None


def _stack(params) -> torch.Tensor:
    """[S, ...] of one parameter of every member, WITH gradients back to each member's own."""
    return torch.stack(list(params))


def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x [S, n, in], w [S, out, in], b [S, out] -> [S, n, out]."""
    return torch.baddbmm(b[:, None], x, w.transpose(1, 2))


def _to_members(x: torch.Tensor, S: int) -> torch.Tensor:
    """[T, S * B, d] (seed-major batch) -> [S, T * B, d]."""
    T, SB, d = x.shape
    return x.reshape(T, S, SB // S, d).transpose(0, 1).reshape(S, T * (SB // S), d)


def _from_members(x: torch.Tensor, T: int) -> torch.Tensor:
    """[S, T * B, d] -> [T, S * B, d]."""
    S, TB, d = x.shape
    return x.reshape(S, T, TB // T, d).transpose(0, 1).reshape(T, S * (TB // T), d)


class StackedMLP:
    """S ``mlp`` networks (Linear, ReLU, ..., Linear) as one: [..., S * B, in] -> [..., S * B, out]."""

    def __init__(self, nets: list):
        layers = [i for i, m in enumerate(nets[0]) if isinstance(m, torch.nn.Linear)]
        self.layers = [(_stack(n[i].weight for n in nets), _stack(n[i].bias for n in nets), i + 1 < len(nets[0]))
                       for i in layers]
        self.S = len(nets)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-2]
        T = lead.numel()
        h = _to_members(x.reshape(T, x.shape[-2], x.shape[-1]), self.S)
        for w, b, relu in self.layers:
            h = _linear(h, w, b)
            if relu:
                h = torch.relu(h)
        return _from_members(h, T).reshape(*lead, x.shape[-2], h.shape[-1])


class StackedEncoder:
    """S ``RNNEncoder``s as one, with ``RNNEncoder.forward``'s calling convention on seed-major
    batches (no hidden state passed in, no truncated BPTT)."""

    def __init__(self, encoders: list[RNNEncoder]):
        first, self.S = encoders[0], len(encoders)
        self.latent_dim, self.hidden_size = first.latent_dim, first.hidden_size
        self.embedders = []  # (index of the input, weight, bias, activation)
        for i, name in enumerate(("action_encoder", "state_encoder", "reward_encoder")):
            if getattr(first, name).out_dim > 0:
                fcs = [getattr(e, name).fc for e in encoders]
                self.embedders.append((i, _stack(f.weight for f in fcs), _stack(f.bias for f in fcs),
                                       getattr(first, name).act))
        self.before = StackedMLP([e.before for e in encoders]) if len(first.before) else None
        self.after = StackedMLP([e.after for e in encoders]) if len(first.after) else None
        grus = [e.gru for e in encoders]
        self.w_ih, self.w_hh = _stack(g.weight_ih_l0 for g in grus), _stack(g.weight_hh_l0 for g in grus)
        self.b_ih, self.b_hh = _stack(g.bias_ih_l0 for g in grus), _stack(g.bias_hh_l0 for g in grus)
        self.fc_w, self.fc_b = _stack(e.fc_out.weight for e in encoders), _stack(e.fc_out.bias for e in encoders)

    def __call__(self, actions, states, rewards, hidden=None, return_prior: bool = True,
                 detach_every: int | None = None, prev_states=None) -> Posterior:
        if hidden is not None or detach_every is not None or not return_prior:
            raise ValueError("the stacked encoder encodes whole trajectories from the prior only")
        S, H = self.S, self.hidden_size
        T, B = actions.shape[0], actions.shape[1] // S
        inputs = (actions, states, rewards)
        x = torch.cat([act(_linear(_to_members(inputs[i], S), w, b)) for i, w, b, act in self.embedders], -1)
        if self.before is not None:
            x = _to_members(self.before(_from_members(x, T)), S)
        # the input gates of every step in one product; the recurrence with its own backward pass
        gi = _linear(x, self.w_ih, self.b_ih).view(S, T, B, 3 * H)
        out = members.gru_sequence(gi, self.w_hh, self.b_hh).reshape(S, (T + 1) * B, H)  # prior first
        top = _to_members(self.after(_from_members(out, T + 1)), S) if self.after is not None else out
        heads = _from_members(_linear(top, self.fc_w, self.fc_b), T + 1)  # [T+1, S * B, 2z]
        z = self.latent_dim
        return Posterior(heads[..., :z], heads[..., z:], _from_members(out, T + 1))


class StackedVAE:
    """The ELBO of S seeds' VAEs on their batches laid side by side (seed-major): ``VAE``'s own
    ``loss`` / ``_elbo_terms`` (borrowed below) with stacked layers, per-seed latent noise and
    per-seed reductions. ``loss`` returns the per-seed totals [S] and stats {name: [S]}."""

    loss = VAE.loss
    _elbo_terms = VAE._elbo_terms
    _indices = VAE._indices
    _pair_weights = VAE._pair_weights
    _reduce_elbo = VAE._reduce_elbo
    _reward_error = VAE._reward_error
    _multihead_reward_error = VAE._multihead_reward_error
    _reward_target = VAE._reward_target
    _kl = VAE._kl

    def __init__(self, vaes: list[VAE]):
        first = vaes[0]
        self.vaes, self.S, self.cfg = vaes, len(vaes), first.cfg
        self.state_to_id = first.state_to_id
        self.encoder = StackedEncoder([v.encoder for v in vaes])
        self.reward_decoder = StackedMLP([v.reward_decoder.net for v in vaes])
        self.state_decoder = self.task_decoder = None

    def _sample(self, mean, logvar, deterministic: bool) -> torch.Tensor:
        """Each seed's latents with the noise its own run draws (its noise generator, its shape)."""
        if deterministic:
            return mean
        shape = (mean.shape[0], mean.shape[1] // self.S, *mean.shape[2:])
        noise = torch.cat([torch.randn(shape, generator=v.noise, device=mean.device, dtype=mean.dtype)
                           for v in self.vaes], 1)
        return mean + noise * torch.exp(0.5 * logvar)

    def _per_run(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], self.S, x.shape[1] // self.S)


def _side_by_side(batches: list):
    """One batch of the seeds' batches laid side by side (None if their lengths differ)."""
    first = batches[0]
    keys = [k for k, v in vars(first).items() if isinstance(v, torch.Tensor) and v.dim() >= 2 and k != "tasks"]
    if any(getattr(b, k).shape != getattr(first, k).shape for b in batches for k in keys):
        return None
    out = {k: torch.cat([getattr(b, k) for b in batches], 1) for k in keys}
    out["tasks"] = torch.cat([b.tasks for b in batches])
    out["lengths"] = torch.cat([b.lengths for b in batches])
    return type(first)(**out)


def stacked_steps(vaes: list[VAE], batches: list[list]) -> list[dict]:
    """``VAE._steps`` of every seed (batches[s]: seed s's), the ELBOs stacked. Per update: one
    forward and backward for all seeds, then each seed's clipping and optimiser step."""
    stats = [{} for _ in vaes]
    clips = any(v.cfg.encoder_max_grad_norm or v.cfg.decoder_max_grad_norm for v in vaes)  # per module: not merged
    merged = None if clips else MergedSteps.of([v.optimiser for v in vaes], [v.parameters() for v in vaes],
                                               [None] * len(vaes))
    for step in range(len(batches[0])):
        batch = _side_by_side([b[step] for b in batches])
        if batch is None or any(v.frozen for v in vaes):  # trajectories of different lengths, or a
            # VAE frozen since (--delayed_freeze): this step one seed at a time, as in a single run
            for v, b, st in zip(vaes, batches, stats):
                st.update(v._steps([b[step]]))
            continue
        total, step_stats = StackedVAE(vaes).loss(batch)  # stacks the parameters as they are now
        for v in vaes:
            v.optimiser.zero_grad(set_to_none=True)
        total.sum().backward()
        if merged is not None:
            merged.step()
        else:
            for v in vaes:
                v.clip_and_step()
        values = {k: t.tolist() for k, t in step_stats.items()}
        for s, st in enumerate(stats):
            st.update({k: float(vals[s]) for k, vals in values.items()})
    return stats


class StackedUpdates:
    """Collects the S seeds' overlapped VAE updates of one iteration and runs them as one job on
    one thread (``stacked_steps``); each seed gets a future of its own stats. Install with
    ``attach`` (every seed's ``VAE.submit`` then hands its update in here)."""

    def __init__(self, vaes: list[VAE]):
        self.vaes = vaes
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="vae_stacked")
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple] = {}

    def attach(self) -> None:
        for k, v in enumerate(self.vaes):
            v.submit = lambda fn, batches, k=k: self._hand_in(k, batches)

    def _hand_in(self, k: int, batches: list) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if k in self._waiting:
                raise RuntimeError(f"seed {k} handed in a second VAE update before the others' first")
            self._waiting[k] = (batches, fut)
            if len(self._waiting) < len(self.vaes):
                return fut
            jobs, self._waiting = [self._waiting[i] for i in range(len(self.vaes))], {}
        self._pool.submit(self._run, jobs)
        return fut

    def _run(self, jobs: list) -> None:
        try:
            stats = stacked_steps(self.vaes, [b for b, _ in jobs])
        except BaseException as e:  # every seed sees the failure where it waits
            for _, fut in jobs:
                fut.set_exception(e)
            return
        for (_, fut), st in zip(jobs, stats):
            fut.set_result(st)

