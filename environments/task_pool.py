"""Finite task pools for any env with a task distribution (ReId's finite-training-task regime).

``TaskPoolEnv(inner, num_goals, num_train_goals, num_eval_goals, pool_seed)`` wraps a batched
``MetaEnv`` and forwards everything to it, except where tasks come from: at construction it
draws a pool of ``num_goals`` tasks from the inner env's own sampler (seeded by ``pool_seed``
only, so every instance built with the same pool seed - training env, evaluation env - holds
the same pool), then

- in "train" mode (the default) new tasks are drawn uniformly from the first
  ``num_train_goals`` pool entries;
- in "eval" mode from the last ``num_eval_goals`` entries (disjoint from the training ones);
  with ``num_eval_goals=None`` evaluation is unlimited: fresh tasks from the inner sampler.

``num_train_goals=None`` means every pool entry not reserved for evaluation. Tasks are drawn
with the wrapper's own generator (seeded by the env ``seed``); the inner env's generator is
left exactly as it was, so the wrapped env's other randomness is that of the bare env.

``task_ids`` [N] holds the pool index of every copy's current task (-1 where a task given to
``reset`` is not in the pool, or comes from the unlimited evaluation sampler); the latent
pool of the dream envs can be keyed by it.
"""
from __future__ import annotations

import numpy as np
import torch

from environments.base import MetaEnv
from environments.wrappers import MetaEnvWrapper

_TASK_SETS = ("train", "eval")
_POOL_SALT = 0x7A5C9001


def draw_pool(inner: MetaEnv, num_goals: int, pool_seed: int, unique: bool = True, max_rounds: int = 100) -> torch.Tensor:
    """``num_goals`` tasks [num_goals, task_dim] from ``inner.sample_tasks``, seeded by ``pool_seed``.

    The inner env's random state (its torch ``generator`` and a numpy ``task_rng`` if it has one)
    is seeded for the draw and restored afterwards. With ``unique`` duplicates are dropped (envs
    with finitely many tasks) and more tasks drawn, keeping first-drawn order; ValueError if the
    env does not have ``num_goals`` distinct tasks."""
    gen_state = inner.generator.get_state()
    rng = getattr(inner, "task_rng", None)
    rng_state = rng.bit_generator.state if isinstance(rng, np.random.Generator) else None
    # a seed of its own, so that a pool seed equal to the env seed does not replay the env's stream
    seed = int(np.random.SeedSequence([int(pool_seed), _POOL_SALT]).generate_state(1)[0])
    try:
        inner.generator.manual_seed(seed)
        if rng_state is not None:
            inner.task_rng = np.random.default_rng(seed)
        tasks = inner.sample_tasks(num_goals).detach().cpu().float()
        rounds = 1
        while unique and len(_first_unique(tasks)) < num_goals:
            if rounds >= max_rounds:
                raise ValueError(f"{type(inner).__name__} gave only {len(_first_unique(tasks))} distinct tasks in "
                                 f"{rounds * num_goals} draws: fewer than num_goals={num_goals}")
            tasks = torch.cat([tasks, inner.sample_tasks(num_goals).detach().cpu().float()])
            rounds += 1
        if unique:
            tasks = tasks[_first_unique(tasks)[:num_goals]]
    finally:
        inner.generator.set_state(gen_state)
        if rng_state is not None:
            inner.task_rng = rng
            rng.bit_generator.state = rng_state
    return tasks.reshape(num_goals, -1)


def _first_unique(tasks: torch.Tensor) -> torch.Tensor:
    """Indices of the first occurrence of every distinct row, in order of appearance."""
    _, inverse = torch.unique(tasks, dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), len(tasks), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(len(tasks)), reduce="amin")
    return first.sort().values


DEFAULT_POOL = 1000  # ReId's env_num_goals


def pool_size(num_goals: int | None, num_train: int | None, num_eval: int | None) -> int | None:
    """The pool size a run uses: ``num_goals``, or ReId's 1000 when only the numbers of training /
    held-out tasks are given (the seed's ``--env_num_train_goals 20``); None: no finite pool."""
    if num_goals is not None:
        return num_goals
    return DEFAULT_POOL if (num_train is not None or num_eval is not None) else None


class TaskPoolEnv(MetaEnvWrapper):
    """A ``MetaEnv`` whose tasks come from a fixed, seeded, finite pool split into train/eval."""

    def __init__(self, inner: MetaEnv, num_goals: int, num_train_goals: int | None = None,
                 num_eval_goals: int | None = None, pool_seed: int = 0, seed: int = 0, unique: bool = True):
        if num_goals < 1:
            raise ValueError(f"num_goals must be >= 1, got {num_goals}")
        n_eval = 0 if num_eval_goals is None else int(num_eval_goals)
        n_train = num_goals - n_eval if num_train_goals is None else int(num_train_goals)
        if n_train < 1 or n_eval < 0 or (num_eval_goals is not None and n_eval < 1):
            raise ValueError(f"need >= 1 training and evaluation goals, got train={n_train}, eval={num_eval_goals}")
        if n_train + n_eval > num_goals:
            raise ValueError(f"num_train_goals ({n_train}) + num_eval_goals ({n_eval}) > num_goals ({num_goals}): "
                             "the training and evaluation tasks would overlap")
        super().__init__(inner)
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(int(seed))
        self.num_goals, self.num_train_goals = int(num_goals), n_train
        self.num_eval_goals = None if num_eval_goals is None else n_eval
        self.pool_seed = int(pool_seed)
        self._pool = draw_pool(inner, self.num_goals, self.pool_seed, unique)
        self.task_set = "train"
        self.task_ids = torch.full((self.num_envs,), -1, dtype=torch.long, device=self.device)
        self.reset()

    # ----- the pool --------------------------------------------------------------------------
    @property
    def pool(self) -> torch.Tensor:
        """All ``num_goals`` tasks [num_goals, task_dim] (CPU)."""
        return self._pool.clone()

    @property
    def train_tasks(self) -> torch.Tensor:
        return self._pool[:self.num_train_goals].clone()

    @property
    def eval_tasks(self) -> torch.Tensor | None:
        """The held-out tasks, or None when evaluation is unlimited (``num_eval_goals=None``)."""
        return None if self.num_eval_goals is None else self._pool[self.num_goals - self.num_eval_goals:].clone()

    def _set_range(self) -> tuple[int, int] | None:
        if self.task_set == "train":
            return 0, self.num_train_goals
        if self.num_eval_goals is None:
            return None
        return self.num_goals - self.num_eval_goals, self.num_goals

    def set_task_set(self, name: str) -> None:
        """Draw later tasks from "train" or "eval" (copies keep their current task until reset)."""
        if name not in _TASK_SETS:
            raise ValueError(f"task set must be one of {_TASK_SETS}, got {name!r}")
        self.task_set = name

    def pool_index(self, tasks: torch.Tensor, atol: float = 1e-6) -> torch.Tensor:
        """Pool index of every task row [n] (-1 where a task is not in the pool)."""
        tasks = tasks.detach().reshape(len(tasks), self._pool.shape[1]).cpu().float()  # also for n = 0
        close = (tasks[:, None, :] - self._pool[None]).abs().le(atol).all(-1)  # [n, num_goals]
        idx = close.float().argmax(1)
        return torch.where(close.any(1), idx, torch.full_like(idx, -1))

    # ----- contract --------------------------------------------------------------------------
    def sample_tasks(self, n: int) -> torch.Tensor:
        """Tasks of the active set, uniformly (with replacement)."""
        return self._sample(n)[0]

    def _sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        span = self._set_range()
        if span is None:  # unlimited evaluation: the inner env's own distribution
            return self.inner.sample_tasks(n), torch.full((n,), -1, dtype=torch.long)
        lo, hi = span
        idx = lo + torch.randint(hi - lo, (n,), generator=self.generator)
        return self._pool[idx].to(self.device), idx

    def reset(self, mask: torch.Tensor | None = None, tasks: torch.Tensor | None = None) -> torch.Tensor:
        mask = self._full_mask(mask)
        if tasks is None:
            tasks, idx = self._sample(int(mask.sum()))
        else:
            idx = self.pool_index(tasks)
        self.task_ids[mask] = idx.to(self.device)
        return self.inner.reset(mask, tasks.to(self.device))

    def reset_mdp(self, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.inner.reset_mdp(mask)

    def get_belief(self) -> torch.Tensor:
        """The inner env's exact belief (note: over the full task distribution, not the pool)."""
        return self.inner.get_belief()

    def set_task(self, mask: torch.Tensor, tasks: torch.Tensor) -> None:
        self.task_ids[mask] = self.pool_index(tasks).to(self.device)
        self.inner.set_task(mask, tasks)

    def _obs(self) -> torch.Tensor:
        return self.inner._obs()

    def state_dict(self) -> dict:
        return {"inner": self.inner.state_dict(), "generator": self.generator.get_state(),
                "task_ids": self.task_ids.clone(), "task_set": self.task_set, "pool": self._pool.clone()}

    def load_state_dict(self, state: dict) -> None:
        if state["pool"].shape != self._pool.shape or not torch.equal(state["pool"], self._pool):
            raise ValueError("checkpoint was taken with a different task pool (num_goals / pool_seed / env kwargs)")
        self.inner.load_state_dict(state["inner"])
        self.generator.set_state(state["generator"])
        self.task_ids = state["task_ids"].to(self.device).clone()
        self.task_set = state["task_set"]
