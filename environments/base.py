"""The batched meta-environment contract.

Every environment is a *batch* of ``num_envs`` copies, each holding its own task, stepped
in one call. There is no process per copy. Simple envs are written in torch (no Python
loop over copies); MuJoCo envs keep one ``MjData`` per copy and compute observations and
rewards for the whole batch at once.

Shapes (N = num_envs):

    observation_space, action_space   spaces of ONE copy (gymnasium spaces)
    max_episode_steps                 H, the length of one MDP episode (time limit)
    task_dim                          size of the task vector returned by get_task()
    belief_dim                        size of the exact belief (0 if the env has none)
    num_tasks                         number of discrete tasks (None if continuous);
                                      used for task-id decoding / multi-head rewards
    task_changes                      "reward" (default) or "dynamics": what differs between tasks
    sample_tasks(n)                -> tasks [n, task_dim], drawn from the env's own
                                      generator (seeded at construction, never global RNG)
    reset(mask=None, tasks=None)   -> obs [N, obs_dim]. New task for the copies in mask
                                      (all if None); sampled unless ``tasks`` [mask.sum(), task_dim]
                                      is given. Copies outside mask are untouched.
    reset_mdp(mask=None)           -> obs [N, obs_dim]. Same task, new episode.
    step(actions)                  -> obs, reward [N], terminated [N] bool, truncated [N] bool, info
                                      actions: [N] long (Discrete) or [N, act_dim] float (Box)
                                      truncated is True when the copy hit max_episode_steps.
                                      info: dict of [N] tensors (optional keys: "success",
                                      "sparse_reward", "dense_reward").
                                      Copies that are done stay done until reset/reset_mdp;
                                      the caller (BAMDP wrapper) resets them.
    get_task()                     -> [N, task_dim]
    get_belief()                   -> [N, belief_dim] (only if belief_dim > 0)

Optional, for plots: step info may carry "pos" [N, k] (x or xy position of the agent), and
an env may define ``plot_rollout(rollout, path)`` (import matplotlib inside the method, never
at module level) where rollout = {"obs": [T+1, obs_dim], "actions": [T, ...], "rewards": [T],
"task": [task_dim], "episode": [T] (episode index k inside the BAMDP), "pos": [T, k] (after
each step) or absent, "bonus": [T] or absent} as numpy arrays of ONE copy.

All returned tensors are float32 (bool for terminated/truncated) on ``env.device``.
"""
from __future__ import annotations

import torch


class MetaEnv:
    """Base class of batched meta-environments. Subclasses implement the ``_`` hooks."""

    observation_space = None
    action_space = None
    max_episode_steps: int = 0
    task_dim: int = 0
    belief_dim: int = 0
    num_tasks: int | None = None
    task_changes: str = "reward"  # what differs between tasks: "reward" or "dynamics" (dream envs need to know)
    # the per-copy tensors that stepping changes, where the class can be stepped as the seeds' group
    # of a --num_seeds run (environments/members.py). Its random numbers must then come from
    # sample_tasks (per seed, as many as the seed's resets) or from rand(num_envs, ...) on every
    # step; not from rand(num_envs) in a reset path (a seed alone draws there only when its own
    # copies reset: the T-maze and the planning game do). None: the seeds' envs step one by one.
    member_state: tuple[str, ...] | None = None

    def __init__(self, num_envs: int, seed: int = 0, device: str | torch.device = "cpu"):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        # one generator per env batch: task sampling is controlled by the run seed only
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(int(seed))
        self.step_count = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        # where this env is the group of S seeds' envs (environments/members.py): each seed's
        # generator, which draws for the seed's block of num_envs / S copies
        self.member_generators: list[torch.Generator] | None = None

    # ----- contract -------------------------------------------------------------------
    @property
    def obs_dim(self) -> int:
        return int(self.observation_space.shape[0])

    @property
    def is_discrete(self) -> bool:
        return hasattr(self.action_space, "n")

    def sample_tasks(self, n: int) -> torch.Tensor:
        raise NotImplementedError

    def reset(self, mask: torch.Tensor | None = None, tasks: torch.Tensor | None = None) -> torch.Tensor:
        mask = self._full_mask(mask)
        if tasks is None:
            tasks = self.sample_tasks(int(mask.sum())) if self.member_generators is None else self._members_tasks(mask)
        self.set_task(mask, tasks.to(self.device))
        return self.reset_mdp(mask)

    def _members_tasks(self, mask: torch.Tensor) -> torch.Tensor:
        """New tasks of a group's masked copies: each seed's drawn from its own generator, as
        many as its own env draws (none where none of its copies reset)."""
        gens, own, tasks = self.member_generators, self.generator, []
        try:
            for g, n in zip(gens, mask.view(len(gens), -1).sum(1).tolist()):
                if n:
                    self.generator = g
                    tasks.append(self.sample_tasks(n))
        finally:
            self.generator = own
        return torch.cat(tasks) if tasks else torch.zeros(0, self.task_dim)

    def reset_mdp(self, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = self._full_mask(mask)
        self.step_count[mask] = 0
        self._reset_state(mask)
        return self._obs()

    def step(self, actions: torch.Tensor):
        raise NotImplementedError

    def get_task(self) -> torch.Tensor:
        raise NotImplementedError

    def get_belief(self) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no exact belief")

    def task_to_id(self, tasks: torch.Tensor) -> torch.Tensor:
        """Index 0..num_tasks-1 of tasks [..., task_dim] (envs with finitely many tasks)."""
        raise NotImplementedError(f"{type(self).__name__} has no discrete task ids")

    # ----- hooks for subclasses ------------------------------------------------------
    def set_task(self, mask: torch.Tensor, tasks: torch.Tensor) -> None:
        raise NotImplementedError

    def _reset_state(self, mask: torch.Tensor) -> None:
        raise NotImplementedError

    def _obs(self) -> torch.Tensor:
        raise NotImplementedError

    # ----- helpers --------------------------------------------------------------------
    def _full_mask(self, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            return torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        mask = torch.as_tensor(mask, device=self.device)
        if mask.dtype != torch.bool or mask.shape != (self.num_envs,):
            raise ValueError(f"mask must be a bool tensor of shape ({self.num_envs},), got {mask.dtype} {tuple(mask.shape)}")
        return mask

    def _advance_time(self) -> torch.Tensor:
        """Count one step; return ``truncated`` [N] (time limit reached)."""
        self.step_count += 1
        return self.step_count >= self.max_episode_steps

    def rand(self, *shape) -> torch.Tensor:
        """Uniform [0,1) numbers from the env's own generator, on the env device. In a group of
        seeds' envs, numbers for the whole batch (shape [num_envs, ...]) come block by block
        from each seed's generator."""
        gens = self.member_generators
        if gens is not None and shape and shape[0] == self.num_envs:
            n = self.num_envs // len(gens)
            return torch.cat([torch.rand(n, *shape[1:], generator=g) for g in gens]).to(self.device)
        return torch.rand(*shape, generator=self.generator).to(self.device)

    def state_dict(self) -> dict:
        """Everything needed to continue exactly (checkpoints). Default: every tensor
        attribute plus the generator; envs with other state (MuJoCo) override this."""
        tensors = {k: v.clone() for k, v in vars(self).items() if isinstance(v, torch.Tensor)}
        return {"tensors": tensors, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state["tensors"].items():
            setattr(self, k, v.to(self.device))
        self.generator.set_state(state["generator"])

    def close(self) -> None:
        pass
