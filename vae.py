"""The belief model: encoder + decoders + ELBO + the buffer of whole BAMDP trajectories.

ELBO (VariBAD): one term per posterior t = 0..H+ (the prior is t = 0)

    ELBO_t = E_{m ~ q(m | tau_:t)} [ sum_i log p(r_{i+1} | s_i, a_i, s_{i+1}, m) + log p(s_{i+1} | s_i, a_i, m) ]
             - KL( q(m | tau_:t) || q(m | tau_:t-1) ),     q(m | tau_:-1) = N(0, I)

computed for all (posterior, decode) pairs at once as [K, D, B] tensors (K posteriors,
D reconstructed steps, B trajectories), with optional subsampling of both.

Reductions (documented fix of reference pitfall 6): over decodes and over ELBO terms each
term is summed or averaged as configured; over trajectories BOTH the reconstruction and
the KL are averaged. (VariBAD averaged the reconstruction but summed the KL over
trajectories, so its effective kl_weight was kl_weight * vae_batch_num_trajs; to reproduce
a reference run exactly, multiply its kl_weight by its vae_batch_num_trajs.)
"""
from __future__ import annotations

import copy
import time
from concurrent.futures import Future, ThreadPoolExecutor
from types import SimpleNamespace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from algorithms.ppo import make_optimiser
from models.decoder import RewardDecoder, StateDecoder, TaskDecoder, pairs_on_helper
from models.encoder import Posterior, build_encoder, sample_gaussian
from utils.spec import RunSpec

PLOT_CHUNK_ROWS = 1 << 16  # (posterior, step, trajectory) rows per block of the no-gradient per-posterior terms


class TrajectoryBuffer:
    """FIFO of whole BAMDP trajectories plus the running (unfinished) one of every copy.

    Stored time-major: actions, rewards, next_obs [H+, capacity, d] (in ``dtype``: float16
    halves the memory) and ``lengths`` [capacity]. The previous observations are not stored:
    prev_obs[t] = next_obs[t-1] except at the start of each MDP episode, whose start
    observation is kept in ``start_obs`` [R, capacity, d]; episode ends are read from the
    BAMDP done flag (the last observation entry when R > 1). Memory is allocated lazily by
    torch.empty (untouched pages cost no RSS).
    """

    FIELDS = ("prev_obs", "actions", "rewards", "next_obs")
    STORED = ("actions", "rewards", "next_obs")

    def __init__(self, capacity: int, horizon: int, num_envs: int, dims: dict[str, int], task_dim: int,
                 device, dtype=torch.float32, episodes: int = 1):
        self.capacity, self.horizon, self.num_envs, self.episodes = capacity, horizon, num_envs, episodes
        self.device = device
        self.data = {k: torch.empty(horizon, capacity, dims[k], dtype=dtype) for k in self.STORED}
        self.start_obs = torch.empty(episodes, capacity, dims["prev_obs"], dtype=dtype)
        self.tasks = torch.zeros(capacity, max(task_dim, 1))
        self.lengths = torch.zeros(capacity, dtype=torch.long)
        self.running = {k: torch.zeros(horizon, num_envs, dims[k], device=device) for k in self.FIELDS}
        self.running_tasks = torch.zeros(num_envs, max(task_dim, 1), device=device)
        self.t = torch.zeros(num_envs, dtype=torch.long, device=device)
        self._env_idx = torch.arange(num_envs, device=device)
        self.reward_absmax = torch.ones((), device=device)  # running max |r|, for normalise_rew_targets
        self.normalise_rewards = False
        self.store_mask: torch.Tensor | None = None  # [N] bool: copies whose finished trajectories are kept
        self.insert_pos, self.size = 0, 0
        self.total = 0          # trajectories ever stored; trajectory i lives in slot i % capacity
        self.saved_totals: list[int] = []  # ``total`` at the segment saves still referenced by checkpoints

    def nbytes(self) -> int:
        """Bytes of the FIFO once full."""
        return sum(v.element_size() * v.numel() for v in (*self.data.values(), self.start_obs))

    def insert(self, prev_obs, actions, rewards, next_obs, task, done: torch.Tensor, any_done: bool) -> None:
        """Append one step of every copy; move finished trajectories into the FIFO.

        ``any_done`` is passed by the caller (which already knows it) to avoid a GPU sync."""
        step = {"prev_obs": prev_obs, "actions": actions.reshape(self.num_envs, -1).float(),
                "rewards": rewards.reshape(self.num_envs, 1), "next_obs": next_obs}
        t = self.t.clamp_max(self.horizon - 1)
        for k, v in step.items():
            self.running[k][t, self._env_idx] = v
        if task is not None:
            self.running_tasks.copy_(task.reshape(self.num_envs, -1))
        if self.normalise_rewards:
            self.reward_absmax = torch.maximum(self.reward_absmax, step["rewards"].abs().max())
        self.t += 1
        if any_done:
            self._finish(done)

    def _episode_starts(self, next_obs: torch.Tensor) -> torch.Tensor:
        """[L, B] bool: step t starts an MDP episode (t = 0, or the previous step ended one)."""
        starts = torch.zeros(next_obs.shape[:2], dtype=torch.bool, device=next_obs.device)
        starts[0] = True
        if self.episodes > 1:
            starts[1:] = next_obs[:-1, :, -1] > 0.5
        return starts

    def _finish(self, done: torch.Tensor) -> None:
        if self.capacity == 0:
            self.t[done] = 0
            return
        keep = done if self.store_mask is None else done & self.store_mask  # e.g. no dream trajectories
        envs = keep.nonzero().squeeze(1)
        n = len(envs)
        slots = (torch.arange(n) + self.insert_pos) % self.capacity
        for k in self.STORED:
            self.data[k][:, slots] = self.running[k][:, envs].to(self.data[k].dtype).cpu()
        next_obs, prev_obs = self.running["next_obs"][:, envs], self.running["prev_obs"][:, envs]
        steps = torch.arange(self.horizon, device=self.t.device)[:, None]
        starts = self._episode_starts(next_obs) & (steps < self.t[envs])
        k = (starts.cumsum(0) - 1).clamp(0, self.episodes - 1)
        col = torch.arange(n, device=k.device).expand_as(k)
        starts_obs = torch.zeros(self.episodes, n, prev_obs.shape[-1], device=prev_obs.device)
        starts_obs[k[starts], col[starts]] = prev_obs[starts]
        self.start_obs[:, slots] = starts_obs.to(self.start_obs.dtype).cpu()
        self.tasks[slots] = self.running_tasks[envs].cpu()
        self.lengths[slots] = self.t[envs].cpu()
        self.insert_pos = (self.insert_pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)
        self.total += n
        self.t[done] = 0

    def sample(self, batch: int, generator: torch.Generator | None = None) -> SimpleNamespace:
        """Random trajectories (with replacement), cropped to the longest one, on device."""
        idx = torch.randint(self.size, (batch,), generator=generator)
        lengths = self.lengths[idx]
        L = int(lengths.max())
        out = {k: v[:L, idx].to(self.device, torch.float32) for k, v in self.data.items()}
        out["prev_obs"] = self._prev_obs(out["next_obs"], self.start_obs[:, idx].to(self.device, torch.float32))
        return SimpleNamespace(**out, tasks=self.tasks[idx].to(self.device), lengths=lengths.to(self.device),
                               reward_scale=self.reward_absmax.clone())

    def _prev_obs(self, next_obs: torch.Tensor, start_obs: torch.Tensor) -> torch.Tensor:
        starts = self._episode_starts(next_obs)
        k = (starts.cumsum(0) - 1).clamp(0, self.episodes - 1)                  # [L, B]
        first = start_obs.gather(0, k[..., None].expand(*k.shape, start_obs.shape[-1]))
        shifted = torch.cat([first[:1], next_obs[:-1]], 0)
        return torch.where(starts[..., None], first, shifted)

    def running_batch(self) -> SimpleNamespace:
        """The unfinished trajectory of every copy (for re-encoding), cropped to the longest."""
        L = max(int(self.t.max()), 1)
        return SimpleNamespace(**{k: v[:L] for k, v in self.running.items()}, lengths=self.t.clone())

    # ---- checkpoints: the stored trajectories go either inline (``with_data``) or, by default, into
    # incremental segment files next to the checkpoints, each written once: a save costs only the
    # trajectories stored since the previous one, and the folder holds about one buffer's worth.
    def save_segments(self, folder: str, keep: int = 3) -> None:
        """Write the trajectories stored since the last save to ``folder/seg_<first>_<end>.pt``
        (atomically), and delete the segments that none of the last ``keep`` saves needs."""
        import os

        os.makedirs(folder, exist_ok=True)
        first = max(self.saved_totals[-1] if self.saved_totals else 0, self.total - self.capacity)
        if self.total > first:
            ids = torch.arange(first, self.total)
            slots = ids % self.capacity
            seg = {"data": {k: v[:, slots].clone() for k, v in self.data.items()}, "start_obs": self.start_obs[:, slots].clone(),
                   "tasks": self.tasks[slots].clone(), "lengths": self.lengths[slots].clone()}
            path = os.path.join(folder, f"seg_{first:012d}_{self.total:012d}.pt")
            torch.save(seg, path + ".tmp")
            os.replace(path + ".tmp", path)
        self.saved_totals = (self.saved_totals + [self.total])[-keep:]
        oldest_needed = self.saved_totals[0] - self.capacity
        for name in os.listdir(folder):
            end = _segment_range(name)
            if end is not None and end[1] <= oldest_needed:
                os.remove(os.path.join(folder, name))

    def load_segments(self, folder: str) -> None:
        """Refill the stored trajectories of a checkpoint saved with ``save_segments`` (segments
        beyond it, written by a run killed before its next checkpoint, are ignored)."""
        import os

        want = range(max(0, self.total - self.capacity), self.total)
        found = 0
        names = sorted(n for n in (os.listdir(folder) if os.path.isdir(folder) else []) if _segment_range(n))
        for name in names:
            a, b = _segment_range(name)
            lo, hi = max(a, want.start), min(b, want.stop)
            if lo >= hi:
                continue
            seg = torch.load(os.path.join(folder, name), map_location="cpu", weights_only=True)
            rows, slots = torch.arange(lo - a, hi - a), torch.arange(lo, hi) % self.capacity
            for k in self.STORED:
                self.data[k][:, slots] = seg["data"][k][:, rows]
            self.start_obs[:, slots] = seg["start_obs"][:, rows]
            self.tasks[slots], self.lengths[slots] = seg["tasks"][rows], seg["lengths"][rows]
            found += hi - lo
        if found < len(want):
            raise FileNotFoundError(f"VAE buffer segments in {folder} hold {found} of the {len(want)} trajectories "
                                    "this checkpoint needs")
        self.size, self.insert_pos = len(want), self.total % self.capacity if self.capacity else 0

    def state_dict(self, with_data: bool) -> dict:
        state = {"running": {k: v.clone() for k, v in self.running.items()}, "t": self.t.clone(),
                 "reward_absmax": self.reward_absmax.clone(), "total": self.total, "saved_totals": list(self.saved_totals),
                 "running_tasks": self.running_tasks.clone(), "insert_pos": self.insert_pos, "size": self.size}
        if with_data:
            state.update(data={k: v[:, :self.size].clone() for k, v in self.data.items()},
                         start_obs=self.start_obs[:, :self.size].clone(),
                         tasks=self.tasks[:self.size].clone(), lengths=self.lengths[:self.size].clone())
        return state

    def load_state_dict(self, state: dict) -> None:
        for k, v in state["running"].items():
            self.running[k].copy_(v)
        self.t.copy_(state["t"])
        self.reward_absmax = state["reward_absmax"].to(self.device)
        self.running_tasks.copy_(state["running_tasks"])
        self.total, self.saved_totals = state.get("total", state["size"]), list(state.get("saved_totals", []))
        if "data" in state:
            n = state["lengths"].shape[0]
            for k, v in state["data"].items():
                self.data[k][:, :n] = v
            self.start_obs[:, :n] = state["start_obs"]
            self.tasks[:n] = state["tasks"]
            self.lengths[:n] = state["lengths"]
            self.insert_pos, self.size = state["insert_pos"], state["size"]
        # without inline data: the trainer refills the buffer with ``load_segments``


def _segment_range(name: str) -> tuple[int, int] | None:
    """(first, end) trajectory ids of a buffer segment file name, None for other files."""
    parts = name[:-3].split("_") if name.startswith("seg_") and name.endswith(".pt") else []
    return (int(parts[1]), int(parts[2])) if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit() else None


def gaussian_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """KL(N1 || N2) for diagonal Gaussians, summed over the last dim."""
    return 0.5 * (logvar2 - logvar1 + (logvar1.exp() + (mean1 - mean2).pow(2)) / logvar2.exp() - 1).sum(-1)


def _bernoulli_error(logits: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of multi-head reward logits against "the reward was 1" (grid goals)."""
    return F.binary_cross_entropy_with_logits(logits, (rewards == 1).float(), reduction="none")


class VAE:
    """Encoder + decoders + optimiser + buffer. ``cfg``: the vae/encoder/decoder sections."""

    def __init__(self, spec: RunSpec, cfg: SimpleNamespace, num_envs: int, device,
                 state_to_id: Callable | None = None, task_to_id: Callable | None = None,
                 seed: int = 0, task_target_dim: int | None = None):
        """task_target_dim: the task decoder regresses a learned task embedding of this size
        (task-inference supervision; set ``task_target_fn`` before training) instead of the task."""
        self.cfg, self.spec, self.device = cfg, spec, device
        self.state_to_id, self.task_to_id = state_to_id, task_to_id
        self.encoder = build_encoder(spec.obs_dim, spec.action_dim, cfg).to(device)
        self.decode_reward = cfg.decode_reward and not cfg.disable_decoder
        self.decode_state = cfg.decode_state and not cfg.disable_decoder
        self.decode_task = cfg.decode_task and not cfg.disable_decoder
        z = cfg.latent_dim
        self.reward_decoder = self.state_decoder = self.task_decoder = None
        if self.decode_reward:
            if cfg.multihead_for_reward and (spec.num_tasks is None or state_to_id is None):
                raise ValueError("--multihead_for_reward needs an env with discrete states (num_tasks, cell_id)")
            self.reward_decoder = RewardDecoder(
                z, spec.obs_dim, spec.action_dim, cfg.reward_decoder_layers, cfg.state_embedding_size,
                cfg.action_embedding_size, cfg.input_prev_state, cfg.input_action,
                spec.num_tasks if cfg.multihead_for_reward else None).to(device)
        if self.decode_state:
            self.state_decoder = StateDecoder(z, spec.obs_dim, spec.action_dim, cfg.state_decoder_layers,
                                              cfg.state_embedding_size, cfg.action_embedding_size).to(device)
        if self.decode_task:
            if cfg.task_pred_type == "task_id" and (spec.num_tasks is None or task_to_id is None):
                raise ValueError("--task_pred_type task_id needs an env with discrete tasks")
            out = spec.num_tasks if cfg.task_pred_type == "task_id" else (task_target_dim or spec.task_dim)
            self.task_decoder = TaskDecoder(z, cfg.task_decoder_layers, out).to(device)
        self.optimiser = make_optimiser(self.parameters(), "adam", cfg.lr_vae)
        self.has_decoder = any(d is not None for d in self.decoders().values())
        capacity = cfg.size_vae_buffer if self.has_decoder else 0
        dims = {"prev_obs": spec.obs_dim, "actions": spec.action_dim, "rewards": 1, "next_obs": spec.obs_dim}
        dtype = {"float32": torch.float32, "float16": torch.float16}[cfg.vae_buffer_dtype]
        self.buffer = TrajectoryBuffer(capacity, spec.horizon, num_envs, dims, spec.task_dim, device, dtype,
                                       episodes=spec.horizon // spec.episode_len)
        self.buffer.normalise_rewards = cfg.normalise_rew_targets
        self.generator = torch.Generator().manual_seed(seed + 12345)          # batch sampling
        self.noise = torch.Generator(device=device).manual_seed(seed + 54321)  # latent samples
        # The encoder the policy acts with. With overlapped updates it is a copy that lags
        # one VAE update behind, refreshed by ``sync_acting_encoder`` after every rollout.
        self.overlap = (bool(getattr(cfg, "vae_update_overlap", False)) and self.has_decoder
                        and not cfg.rlloss_through_encoder)  # RL2-style: the policy's loss trains it
        self.acting_encoder = copy.deepcopy(self.encoder) if self.overlap else self.encoder
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="vae") if self.overlap else None
        # overlapped updates are handed to this (fn, batches) -> Future: the VAE's own thread, or,
        # in a --num_seeds run, the stacked update of all seeds (vae_members.StackedUpdates)
        self.submit = self._pool.submit if self.overlap else None
        self._pending: Future | None = None
        # where pairs_mse decodes half its chunks: on its helper thread unless the last overlapped
        # update finished before the main thread needed it (then the main thread keeps a core to
        # itself). Scheduling only: the numbers are the same either way.
        self._pairs_helper = True
        self.task_target_fn: Callable | None = None  # tasks [B, dt] -> targets [B, task_target_dim]
        self.frozen = False  # compute the loss but never step (ReId's freeze_vae)
        self.last_stats: dict = {}  # losses of the latest finished update

    # ---- bookkeeping ------------------------------------------------------------------------
    def decoders(self) -> dict[str, nn.Module | None]:
        return {"reward_decoder": self.reward_decoder, "state_decoder": self.state_decoder,
                "task_decoder": self.task_decoder}

    def modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, **{k: v for k, v in self.decoders().items() if v is not None}}

    def parameters(self) -> list:
        return [p for m in self.modules().values() for p in m.parameters()]

    def state_dict(self, with_buffer: bool) -> dict:
        self.wait()
        return {"modules": {k: m.state_dict() for k, m in self.modules().items()},
                "acting_encoder": self.acting_encoder.state_dict(),
                "optimiser": self.optimiser.state_dict(), "buffer": self.buffer.state_dict(with_buffer),
                "generator": self.generator.get_state(), "noise": self.noise.get_state()}

    def load_state_dict(self, state: dict) -> None:
        for k, m in self.modules().items():
            m.load_state_dict(state["modules"][k])
        self.optimiser.load_state_dict(state["optimiser"])
        self.acting_encoder.load_state_dict(state["acting_encoder"])
        self.buffer.load_state_dict(state["buffer"])
        self.generator.set_state(state["generator"])
        self.noise.set_state(state["noise"])

    # ---- encoding ---------------------------------------------------------------------------
    @torch.no_grad()
    def encode_running(self) -> Posterior:
        """Re-encode every copy's unfinished trajectory with the current encoder; returns
        the posterior at the current step (the prior for copies at the start of a BAMDP)."""
        run = self.buffer.running_batch()
        post = self.acting_encoder(run.actions, run.next_obs, run.rewards, return_prior=True,
                                   prev_states=run.prev_obs)
        idx = run.lengths.clamp_max(post.mean.shape[0] - 1)
        rows = torch.arange(len(idx), device=idx.device)
        return Posterior(post.mean[idx, rows], post.logvar[idx, rows], post.hidden[idx, rows])

    # ---- the ELBO ---------------------------------------------------------------------------
    def ready(self) -> bool:
        return self.has_decoder and self.buffer.size > 0

    def update(self, num_updates: int) -> dict:
        """``num_updates`` gradient steps; with overlap they run on a background thread
        (call ``wait`` for their stats). The batches are drawn here, so what the thread
        computes does not depend on what the main thread does meanwhile."""
        self.wait()
        batches = [self.buffer.sample(self.cfg.vae_batch_num_trajs, self.generator) for _ in range(num_updates)]
        if self.task_target_fn is not None:  # computed here, on the main thread, without gradients
            with torch.no_grad():
                for b in batches:
                    b.task_target = self.task_target_fn(b.tasks)
        if not self.overlap:
            self.last_stats = self._update_on(batches)
            return self.last_stats
        self._pending = self.submit(self._update_on, batches)
        return {}

    def wait(self) -> dict:
        """Block until a background update finished; returns (and keeps) its stats."""
        if self._pending is not None:
            t0 = time.perf_counter()
            self.last_stats, self._pending = self._pending.result(), None
            self._pairs_helper = time.perf_counter() - t0 > 1e-3  # the main thread waited for it
        return self.last_stats

    def pretrain(self, num_updates: int) -> dict:
        """``num_updates`` VAE-only steps before RL starts (waited for; the acting encoder catches up)."""
        self.update(num_updates)
        stats = self.wait()
        self.sync_acting_encoder()
        return stats

    def set_lr(self, lr: float) -> None:
        """A new learning rate (a resume may lower it: NaN recovery)."""
        for group in self.optimiser.param_groups:
            group["lr"] = lr

    def sync_acting_encoder(self) -> None:
        """Overlap mode: the policy's encoder catches up with the trained one (after a rollout)."""
        if self.overlap:
            self.wait()
            self.acting_encoder.load_state_dict(self.encoder.state_dict())

    def _update_on(self, batches: list) -> dict:
        with pairs_on_helper(self._pairs_helper):
            return self._steps(batches)

    def _steps(self, batches: list) -> dict:
        stats = {}
        for batch in batches:
            if self.frozen:  # --freeze_vae: the loss is computed and logged, nothing is updated
                with torch.no_grad():
                    _, stats = self.loss(batch)
                continue
            loss, stats = self.loss(batch)
            self.optimiser.zero_grad(set_to_none=True)
            loss.backward()
            self.clip_and_step()
        return {k: float(v) for k, v in stats.items()}

    def clip_and_step(self) -> None:
        """The optimiser step on the gradients in .grad (after clipping, where configured)."""
        if self.cfg.encoder_max_grad_norm:
            nn.utils.clip_grad_norm_(self.encoder.parameters(), self.cfg.encoder_max_grad_norm)
        if self.cfg.decoder_max_grad_norm:
            for dec in self.decoders().values():
                if dec is not None:
                    nn.utils.clip_grad_norm_(dec.parameters(), self.cfg.decoder_max_grad_norm)
        self.optimiser.step()

    def _indices(self, lengths: torch.Tensor, L: int, subsample: bool = True):
        """ELBO indices [K, B] with validity, decode indices [D, B] with validity."""
        cfg, B, dev = self.cfg, lengths.shape[0], lengths.device
        if cfg.vae_subsample_elbos and subsample:
            u = torch.rand(cfg.vae_subsample_elbos, B, generator=self.generator).to(dev)
            e_idx = (u * (lengths + 1)).long()
            e_ok = torch.ones_like(e_idx, dtype=torch.bool)
        else:
            e_idx = torch.arange(L + 1, device=dev)[:, None].expand(L + 1, B)
            e_ok = e_idx <= lengths
        if cfg.vae_subsample_decodes and subsample:
            u = torch.rand(cfg.vae_subsample_decodes, B, generator=self.generator).to(dev)
            d_idx = (u * lengths).long()
            d_ok = torch.ones_like(d_idx, dtype=torch.bool)
        else:
            d_idx = torch.arange(L, device=dev)[:, None].expand(L, B)
            d_ok = d_idx < lengths
        return e_idx, e_ok, d_idx, d_ok

    def _elbo_terms(self, batch: SimpleNamespace, subsample: bool = True, avg_decodes: bool | None = None,
                    use_mean: bool = False, reduced: bool = False):
        """Per-posterior terms: {name: [K, B]} reduced over decodes, their validity [K, B],
        and the KL [L+1, B] with its validity. ``reduced``: the reward and state terms come
        already reduced over posteriors and trajectories as ``_reduce_elbo`` would (scalars),
        from the decoders' fused ``pairs_mse``, which never holds the [K, D, B, hidden]
        activations (same mathematics, float additions in another order)."""
        cfg = self.cfg
        avg_decodes = cfg.vae_avg_reconstruction_terms if avg_decodes is None else avg_decodes
        L = batch.actions.shape[0]
        post = self.encoder(batch.actions, batch.next_obs, batch.rewards, return_prior=True,
                            detach_every=cfg.tbptt_stepsize, prev_states=batch.prev_obs)
        latent = self._sample(post.mean, post.logvar, cfg.disable_stochasticity_in_latent or use_mean)
        e_idx, e_ok, d_idx, d_ok = self._indices(batch.lengths, L, subsample)
        K, D, B = e_idx.shape[0], d_idx.shape[0], e_idx.shape[1]
        lat = latent.gather(0, e_idx[..., None].expand(K, B, latent.shape[-1]))  # [K, B, z]
        mask = e_ok[:, None] & d_ok[None]                                        # [K, D, B]
        if cfg.decode_only_past:
            mask = mask & (d_idx[None] < e_idx[:, None])
        take = lambda x: x.gather(0, d_idx[..., None].expand(D, B, x.shape[-1]))  # noqa: E731
        tgt = SimpleNamespace(prev_obs=take(batch.prev_obs), actions=take(batch.actions),
                              rewards=self._reward_target(take(batch.rewards), getattr(batch, "reward_scale", None)),
                              next_obs=take(batch.next_obs))

        def per_posterior(error_fn):
            """error_fn(lat [k, B, z], exp) -> errors [k, D, B], reduced over decodes -> [K, B].
            Without gradients (plots) in blocks of posteriors: bounded memory, same numbers."""
            kc = K if torch.is_grad_enabled() else max(1, PLOT_CHUNK_ROWS // max(D * B, 1))
            out = []
            for k in range(0, K, kc):
                n, m = min(kc, K - k), mask[k:k + kc]
                err = error_fn(lat[k:k + kc], lambda x, n=n: x[None].expand(n, *x.shape)) * m
                out.append(err.sum(1) / m.sum(1).clamp_min(1) if avg_decodes else err.sum(1))
            return out[0] if len(out) == 1 else torch.cat(out)

        terms = {}
        fused_reward = reduced and self.reward_decoder is not None and not cfg.multihead_for_reward
        if fused_reward or (reduced and self.state_decoder is not None):
            weight = self._pair_weights(mask, e_ok, avg_decodes)  # each pair's weight in the reduced term
        if self.reward_decoder is not None:
            if fused_reward:
                terms["reward_reconstr_err"] = self.reward_decoder.pairs_mse(
                    lat, tgt.next_obs, tgt.prev_obs, tgt.actions, tgt.rewards, weight)
            elif cfg.multihead_for_reward and not cfg.decode_only_past:
                terms["reward_reconstr_err"] = self._multihead_reward_error(lat, tgt, e_ok, d_ok, avg_decodes)
            else:
                terms["reward_reconstr_err"] = per_posterior(lambda lat, exp: self._reward_error(lat, tgt, exp))
        if self.state_decoder is not None:
            if reduced:
                terms["state_reconstr_err"] = self.state_decoder.pairs_mse(
                    lat, tgt.prev_obs, tgt.actions, tgt.next_obs, weight)
            else:
                terms["state_reconstr_err"] = per_posterior(lambda lat, exp: (
                    self.state_decoder.pairs(lat, tgt.prev_obs, tgt.actions) - exp(tgt.next_obs)).pow(2).mean(-1))
        if self.task_decoder is not None:
            target = getattr(batch, "task_target", None)
            if target is None:  # main-thread callers (plots); background updates get it precomputed
                target = batch.tasks if self.task_target_fn is None else self.task_target_fn(batch.tasks).detach()
            terms["task_reconstr_err"] = self._task_error(lat, target)
        kl = ok = None
        if not cfg.disable_kl_term:
            kl, ok = self._kl(post.mean, post.logvar, batch.lengths)
        return terms, e_ok, kl, ok

    def loss(self, batch: SimpleNamespace):
        cfg = self.cfg
        terms, e_ok, kl, ok = self._elbo_terms(batch, reduced=True)
        coeff = {"reward_reconstr_err": cfg.rew_loss_coeff, "state_reconstr_err": cfg.state_loss_coeff,
                 "task_reconstr_err": cfg.task_loss_coeff}
        run = self._per_run
        stats = {name: err if err.dim() == 0 else self._reduce_elbo(run(err), run(e_ok)) for name, err in terms.items()}
        total = sum(coeff[name] * val for name, val in stats.items())
        if kl is not None:
            stats["kl"] = self._reduce_elbo(run(kl), run(ok))
            total = total + cfg.kl_weight * stats["kl"]
        stats["sum"] = total
        return total, {k: v.detach() for k, v in stats.items()}

    @torch.no_grad()
    def per_elbo_errors(self, batch: SimpleNamespace) -> dict:
        """For plots: every posterior's mean error over the whole trajectory, and its KL. Decodes
        the posterior mean: plotting never draws from the training generators."""
        terms, _, kl, _ = self._elbo_terms(batch, subsample=False, avg_decodes=True, use_mean=True)
        out = {k: v[:, 0].cpu().numpy() for k, v in terms.items()}
        if kl is not None:
            out["kl"] = kl[:, 0].cpu().numpy()
        return out

    def _reward_target(self, rewards: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        if self.cfg.normalise_rew_targets:
            return rewards / (self.buffer.reward_absmax if scale is None else scale)
        return rewards

    @torch.no_grad()
    def transition_error(self, mean, logvar, prev_obs, actions, next_obs, rewards, tasks=None,
                         generator: torch.Generator | None = None) -> torch.Tensor:
        """Weighted reconstruction error of each transition [T, N] under a sample of the
        posterior that includes it (HyperX's VAE-error bonus). rewards: [T, N]. ``generator``
        draws the latent sample (default: the training noise stream)."""
        cfg = self.cfg
        latent = sample_gaussian(mean, logvar, cfg.disable_stochasticity_in_latent, generator or self.noise)
        target = self._reward_target(rewards[..., None])
        err = torch.zeros_like(rewards)
        if self.reward_decoder is not None:
            if cfg.multihead_for_reward:
                logits = self.reward_decoder(latent).gather(-1, self.state_to_id(next_obs)[..., None])
                rew_err = _bernoulli_error(logits, rewards[..., None])
            else:
                rew_err = (self.reward_decoder(latent, next_obs, prev_obs, actions) - target).pow(2)
            err = err + cfg.rew_loss_coeff * rew_err.squeeze(-1)
        if self.state_decoder is not None:
            err = err + cfg.state_loss_coeff * (self.state_decoder(latent, prev_obs, actions) - next_obs).pow(2).mean(-1)
        if self.task_decoder is not None and tasks is not None:
            if self.task_target_fn is not None:
                tasks = self.task_target_fn(tasks)
            err = err + cfg.task_loss_coeff * self._task_error(latent, tasks)
        return err

    def _reward_error(self, lat, tgt, exp):
        if self.cfg.multihead_for_reward:
            logits = self.reward_decoder(lat).permute(1, 0, 2)      # [B, K, S]
            ids = self.state_to_id(tgt.next_obs).t()                  # [B, D]
            K, D = lat.shape[0], ids.shape[1]
            picked = logits.gather(2, ids[:, None].expand(-1, K, D))  # [B, K, D], no [K,D,B,S] copy
            picked = picked.permute(1, 2, 0)                          # [K, D, B]
            return _bernoulli_error(picked, exp(tgt.rewards.squeeze(-1)))
        pred = self.reward_decoder.pairs(lat, tgt.next_obs, tgt.prev_obs, tgt.actions)
        return (pred - exp(tgt.rewards)).pow(2).squeeze(-1)

    def _multihead_reward_error(self, lat, tgt, e_ok, d_ok, avg_decodes: bool) -> torch.Tensor:
        """The multi-head reward term of every posterior [K, B], summed (or averaged) over the
        decoded steps, without forming the [K, D, B] (posterior, step) pairs: the error of a pair
        is BCE(l, y) = softplus(l) - y * l with l the logit of the cell visited at the step, so its
        sum over steps is, per cell c, softplus(l_c) * (visits of c) - l_c * (rewarded visits of c),
        the visits counted once per trajectory [B, cells]. (A pair counts where its posterior and
        its step are valid: the mask factorises unless --decode_only_past.) Same mathematics as
        ``_reward_error`` summed over steps; float additions in another order."""
        logits = self.reward_decoder(lat)                            # [K, B, cells]
        ids = self.state_to_id(tgt.next_obs).t()                     # [B, D]
        w = d_ok.t().to(logits.dtype)                                # [B, D]
        hit = (tgt.rewards.squeeze(-1).t() == 1).to(logits.dtype) * w
        visits = logits.new_zeros(logits.shape[1:]).scatter_add_(1, ids, w)
        rewarded = logits.new_zeros(logits.shape[1:]).scatter_add_(1, ids, hit)
        err = (F.softplus(logits) * visits - logits * rewarded).sum(-1) * e_ok
        return err / w.sum(1).clamp_min(1) if avg_decodes else err

    def _task_error(self, lat, tasks):
        """Task reconstruction error of latents [..., z] against tasks that broadcast to them
        ([B, dt] for the ELBO's [K, B] posteriors, [T, N, dt] per transition)."""
        pred = self.task_decoder(lat)                                # [..., out]
        if self.cfg.task_pred_type == "task_id":
            ids = self.task_to_id(tasks).expand(pred.shape[:-1])
            err = F.cross_entropy(pred.reshape(-1, pred.shape[-1]), ids.reshape(-1), reduction="none")
            return err.reshape(ids.shape)
        return (pred - tasks[..., :pred.shape[-1]]).pow(2).mean(-1)

    def _pair_weights(self, mask, e_ok, avg_decodes: bool) -> torch.Tensor:
        """[K, D, B] weights w with sum_{k,d,b} w * err = _reduce_elbo(over_decodes(err), e_ok)."""
        w = e_ok.float()
        if avg_decodes:
            w = w / mask.sum(1).clamp_min(1)
        if self.cfg.vae_avg_elbo_terms:
            w = w / e_ok.sum(0).clamp_min(1)
        w = w / e_ok.shape[1]
        return mask * w[:, None]

    def _sample(self, mean, logvar, deterministic: bool) -> torch.Tensor:
        """Latent samples of posteriors [..., B, z] for the ELBO (from the training noise stream)."""
        return sample_gaussian(mean, logvar, deterministic, self.noise)

    def _per_run(self, x: torch.Tensor) -> torch.Tensor:
        """Per-posterior terms [K, B] as ``_reduce_elbo`` reduces them (one run: as they are)."""
        return x

    def _reduce_elbo(self, per_elbo, e_ok):
        """[K, ..., B] -> [...]: over posteriors (sum or mean over valid ones), then mean over B."""
        per_elbo = per_elbo * e_ok
        if self.cfg.vae_avg_elbo_terms:
            return (per_elbo.sum(0) / e_ok.sum(0).clamp_min(1)).mean(-1)
        return per_elbo.sum(0).mean(-1)

    def _kl(self, mean, logvar, lengths):
        """KL of every posterior t = 0..L to its predecessor (N(0, I) before t = 0)."""
        if self.cfg.kl_to_gauss_prior:
            prev_m, prev_lv = torch.zeros_like(mean), torch.zeros_like(logvar)
        else:
            prev_m = torch.cat([torch.zeros_like(mean[:1]), mean[:-1]])
            prev_lv = torch.cat([torch.zeros_like(logvar[:1]), logvar[:-1]])
        kl = gaussian_kl(mean, logvar, prev_m, prev_lv)              # [L+1, B]
        ok = torch.arange(kl.shape[0], device=kl.device)[:, None] <= lengths
        return kl, ok
