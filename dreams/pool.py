"""The pool of posterior latents the dream sampler is fitted to, and its refit schedule.

ReId gathers latents in two ways (``--kde_from_running_latents`` / ``--kde_from_train``):

- running latents: at every BAMDP end the posterior of the real copies is appended; ReId fits
  the KDE on what was gathered since the last fit and then clears it. ``LatentPool`` is a
  fixed-capacity FIFO (oldest dropped first) with ``clear_on_fit`` for exactly that.
- per training task: ReId encodes one scripted "oracle" trajectory per training goal (point
  robot only). The env-agnostic version here keys the pool by the training-task id
  (``TaskPoolEnv.task_ids``) and keeps the most recent posterior of every task, so the fit sees
  one latent per training task.

``latents_for_fit`` applies ReId's priority: running latents if enabled and any, else the
per-task latents if enabled and any, else None (the trainer then falls back to the prior).

Take the posterior *before* the encoder's hidden state is reset at the BAMDP end (the
reference appended the encoding of only the final transition, see the notes, part B.3).
"""
from __future__ import annotations

import torch


class LatentPool:
    """FIFO of latents (means, optionally logvars), or a table keyed by training-task id."""

    def __init__(self, latent_dim: int, capacity: int | None = None, num_keys: int | None = None,
                 keep_logvar: bool = False, refit_every: int = 1, clear_on_fit: bool = False):
        if (capacity is None) == (num_keys is None):
            raise ValueError("give exactly one of capacity (FIFO) or num_keys (keyed by task id)")
        size = capacity if num_keys is None else num_keys
        if size < 1 or refit_every < 1:
            raise ValueError(f"capacity/num_keys and refit_every must be >= 1, got {size}, {refit_every}")
        self.latent_dim, self.keyed, self.size = int(latent_dim), num_keys is not None, int(size)
        self.keep_logvar, self.refit_every, self.clear_on_fit = keep_logvar, int(refit_every), clear_on_fit
        self.means = torch.zeros(self.size, self.latent_dim)
        self.logvars = torch.zeros(self.size, self.latent_dim) if keep_logvar else None
        self.filled = torch.zeros(self.size, dtype=torch.bool)
        self.stamp = torch.zeros(self.size, dtype=torch.long)  # insertion counter: FIFO order
        self.count = 0          # latents added so far
        self.last_fit = None    # iteration of the last fit (None: never)
        self.num_fits = 0

    # ----- filling -----------------------------------------------------------------------------
    def add(self, means: torch.Tensor, logvars: torch.Tensor | None = None, keys: torch.Tensor | None = None,
            mask: torch.Tensor | None = None) -> int:
        """Add rows [n, d] (those in ``mask`` [n] if given). Keyed pools need ``keys`` [n] (task ids;
        rows with a negative key are skipped) and keep the latest latent of every key. Returns
        the number of latents added."""
        means = means.detach().reshape(-1, self.latent_dim).float().cpu()
        keep = torch.ones(len(means), dtype=torch.bool) if mask is None else mask.detach().cpu().bool().reshape(-1)
        if self.keep_logvar:
            if logvars is None:
                raise ValueError("this pool keeps logvars: pass them")
            logvars = logvars.detach().reshape(-1, self.latent_dim).float().cpu()
        if self.keyed:
            if keys is None:
                raise ValueError("a keyed pool needs the task id of every latent")
            keys = keys.detach().reshape(-1).long().cpu()
            if (keys >= self.size).any():
                raise ValueError(f"task id out of range 0..{self.size - 1}: {keys.max().item()}")
            keep = keep & (keys >= 0)
        rows = keep.nonzero().squeeze(1)
        for r in rows.tolist():  # in order: a later latent of the same key / slot wins
            slot = int(keys[r]) if self.keyed else self.count % self.size
            self.means[slot] = means[r]
            if self.keep_logvar:
                self.logvars[slot] = logvars[r]
            self.filled[slot] = True
            self.stamp[slot] = self.count
            self.count += 1
        return len(rows)

    def __len__(self) -> int:
        return int(self.filled.sum())

    def _order(self) -> torch.Tensor:
        idx = self.filled.nonzero().squeeze(1)
        return idx if self.keyed else idx[self.stamp[idx].argsort()]

    def latents(self) -> torch.Tensor:
        """[M, d]: FIFO oldest first; keyed pools in task-id order."""
        return self.means[self._order()].clone()

    def latent_logvars(self) -> torch.Tensor | None:
        return None if self.logvars is None else self.logvars[self._order()].clone()

    def keys(self) -> torch.Tensor | None:
        """Task ids of ``latents()`` rows (keyed pools)."""
        return self._order() if self.keyed else None

    def clear(self) -> None:
        self.filled.zero_()

    # ----- refit schedule ------------------------------------------------------------------------
    def due(self, iteration: int) -> bool:
        """A fit is due: never fitted, or ``refit_every`` iterations since the last fit."""
        return self.last_fit is None or iteration - self.last_fit >= self.refit_every

    def mark_fitted(self, iteration: int) -> None:
        """Record a fit at ``iteration``; clears the pool if ``clear_on_fit`` (ReId)."""
        self.last_fit, self.num_fits = int(iteration), self.num_fits + 1
        if self.clear_on_fit:
            self.clear()

    # ----- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {k: getattr(self, k) for k in ("count", "last_fit", "num_fits")}
        state.update({k: getattr(self, k).clone() for k in ("means", "filled", "stamp")})
        state["logvars"] = None if self.logvars is None else self.logvars.clone()
        return state

    def load_state_dict(self, state: dict) -> None:
        if state["means"].shape != self.means.shape or (state["logvars"] is None) != (self.logvars is None):
            raise ValueError("latent pool checkpoint has another size, latent_dim or logvar setting")
        for k in ("means", "filled", "stamp"):
            setattr(self, k, state[k].clone())
        self.logvars = None if state["logvars"] is None else state["logvars"].clone()
        self.count, self.last_fit, self.num_fits = state["count"], state["last_fit"], state["num_fits"]


def latents_for_fit(running: LatentPool | None, per_task: LatentPool | None,
                    min_latents: int = 1) -> tuple[torch.Tensor | None, str]:
    """ReId's choice of fit data: (latents [M, d], "running" | "per_task") or (None, "prior").

    A source is used only if it holds at least ``min_latents`` latents (a KDE in d dims needs d + 1)."""
    for pool, name in ((running, "running"), (per_task, "per_task")):
        if pool is not None and len(pool) >= min_latents:
            return pool.latents(), name
    return None, "prior"
