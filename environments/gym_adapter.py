"""Adapter: any gymnasium env with a task-setting method -> batched ``MetaEnv``.

``GymnasiumMetaEnv`` keeps N gymnasium env copies in-process (a plain list; no subprocesses, no
autoreset: copies are reset only through ``reset`` / ``reset_mdp``, which is what a BAMDP needs) and
implements the contract of environments/base.py:

- tasks come from ``task_sampler(rng, n) -> array [n, task_dim]`` with ``rng`` this adapter's own
  ``numpy.random.Generator`` (seeded from ``seed``), and are handed to each copy as a 1-D float
  numpy array through ``getattr(env.unwrapped, set_task_method)(task)``;
- copy i is reset with seed ``seed`` spawned for copy i the first time, later resets continue the
  env's own generator, so the same seed gives the same trajectories;
- observations are flattened with ``gymnasium.spaces.flatten`` and returned as float32 tensors;
- ``truncated`` is True when the copy reached ``max_episode_steps`` (default: the env spec's
  ``max_episode_steps``; pass it explicitly for unregistered envs) or the env itself truncated;
- a copy that terminated or truncated is not stepped again: it repeats its last observation with
  reward 0 and the same done flags until it is reset (the BAMDP wrapper resets it);
- ``info`` carries the scalar entries named in ``info_keys`` (as float32 [N]) and, when
  ``pos_fn(env) -> array [k]`` is given, "pos" [N, k];
- an optional ``belief_method`` (name of a method of the unwrapped env returning [belief_dim])
  enables ``get_belief``;
- ``state_dict`` / ``load_state_dict`` (checkpoints) deep-copy the gymnasium envs when possible,
  so a run continues exactly; otherwise tasks are restored and new episodes started (warning).

Example (a tiny custom env: a 1-D point that should reach an unknown goal)::

    import gymnasium as gym
    import numpy as np
    import torch
    from environments.gym_adapter import GymnasiumMetaEnv

    class GoalLine(gym.Env):
        observation_space = gym.spaces.Box(-10, 10, shape=(1,), dtype=np.float32)
        action_space = gym.spaces.Box(-1, 1, shape=(1,), dtype=np.float32)

        def __init__(self):
            self.goal, self.x = 0.0, 0.0

        def set_task(self, task):            # task: 1-D numpy array [task_dim]
            self.goal = float(task[0])

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.x = float(self.np_random.uniform(-0.1, 0.1))
            return np.array([self.x], np.float32), {}

        def step(self, action):
            self.x += 0.1 * float(np.clip(action[0], -1, 1))
            reward = -abs(self.x - self.goal)
            return np.array([self.x], np.float32), reward, False, False, {"dist": -reward}

    env = GymnasiumMetaEnv(GoalLine, num_envs=4, seed=0, max_episode_steps=50,
                           task_sampler=lambda rng, n: rng.uniform(-1, 1, size=(n, 1)),
                           info_keys=("dist",), pos_fn=lambda e: [e.x])
    obs = env.reset()                                    # [4, 1]; new goals for all copies
    obs, rew, term, trunc, info = env.step(torch.zeros(4, 1))
    env.get_task()                                       # [4, 1]
    env.reset(mask=torch.tensor([True, False, False, False]))   # new task for copy 0 only

A registered gymnasium id works the same way (``GymnasiumMetaEnv("MyTaskEnv-v0", ...)``, with
``env_kwargs`` passed to ``gymnasium.make``); the method that sets the task is looked up on
``env.unwrapped``.
"""
from __future__ import annotations

import copy
import pickle
import warnings
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from environments.base import MetaEnv


class GymnasiumMetaEnv(MetaEnv):
    def __init__(self, env_fn: str | Callable[[], gym.Env], num_envs: int, seed: int = 0, device="cpu", *,
                 task_sampler: Callable[[np.random.Generator, int], np.ndarray],
                 set_task_method: str = "set_task", task_dim: int | None = None,
                 max_episode_steps: int | None = None, env_kwargs: dict | None = None,
                 info_keys: tuple = (), pos_fn: Callable[[gym.Env], np.ndarray] | None = None,
                 belief_method: str | None = None, belief_dim: int | None = None,
                 num_tasks: int | None = None):
        super().__init__(num_envs, seed, device)
        env_kwargs = dict(env_kwargs or {})
        if isinstance(env_fn, str):
            env_id = env_fn
            self.envs = [gym.make(env_id, **env_kwargs) for _ in range(self.num_envs)]
        else:
            self.envs = [env_fn(**env_kwargs) for _ in range(self.num_envs)]
        first = self.envs[0]
        if not hasattr(first.unwrapped, set_task_method):
            raise AttributeError(f"{type(first.unwrapped).__name__} has no task-setting method '{set_task_method}'")
        self.set_task_method = set_task_method
        self.task_sampler = task_sampler
        self.info_keys = tuple(info_keys)
        self.pos_fn = pos_fn
        self.belief_method = belief_method

        ss = np.random.SeedSequence(int(seed))
        task_ss, env_ss = ss.spawn(2)
        self.task_rng = np.random.default_rng(task_ss)
        self._first_seeds = [int(s.generate_state(1)[0]) for s in env_ss.spawn(self.num_envs)]
        self._seeded = [False] * self.num_envs

        self._raw_obs_space = first.observation_space
        flat = gym.spaces.flatten_space(first.observation_space)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=flat.shape, dtype=np.float32)
        self.action_space = first.action_space
        if max_episode_steps is None:
            spec = getattr(first, "spec", None)
            max_episode_steps = getattr(spec, "max_episode_steps", None) if spec is not None else None
        if max_episode_steps is None:
            raise ValueError("max_episode_steps is unknown: pass it (the env has no spec.max_episode_steps)")
        self.max_episode_steps = int(max_episode_steps)
        if task_dim is None:
            task_dim = int(np.asarray(task_sampler(np.random.default_rng(0), 1)).reshape(1, -1).shape[1])
        self.task_dim = int(task_dim)
        self.num_tasks = num_tasks
        if belief_method is not None:
            self.belief_dim = int(belief_dim) if belief_dim is not None else \
                int(np.asarray(getattr(first.unwrapped, belief_method)()).size)

        n = self.num_envs
        self._task = np.zeros((n, self.task_dim))
        self._last_obs = np.zeros((n, self.obs_dim), dtype=np.float32)
        self._terminated = np.zeros(n, dtype=bool)
        self._env_truncated = np.zeros(n, dtype=bool)
        self._pos = None
        self.reset()

    # ----- contract ---------------------------------------------------------------------
    def sample_tasks(self, n: int) -> torch.Tensor:
        tasks = np.asarray(self.task_sampler(self.task_rng, n), dtype=np.float64).reshape(n, self.task_dim)
        return torch.from_numpy(tasks.astype(np.float32))

    def set_task(self, mask, tasks):
        idx = np.flatnonzero(mask.cpu().numpy())
        tasks = torch.as_tensor(tasks).detach().cpu().double().numpy().reshape(len(idx), self.task_dim)
        for j, i in enumerate(idx.tolist()):
            getattr(self.envs[i].unwrapped, self.set_task_method)(tasks[j].copy())
            self._task[i] = tasks[j]

    def get_task(self):
        return torch.from_numpy(self._task.astype(np.float32)).to(self.device)

    def get_belief(self):
        if self.belief_method is None:
            return super().get_belief()
        b = np.stack([np.asarray(getattr(e.unwrapped, self.belief_method)(), dtype=np.float32).reshape(-1)
                      for e in self.envs])
        return torch.from_numpy(b).to(self.device)

    def _flat(self, obs) -> np.ndarray:
        return np.asarray(gym.spaces.flatten(self._raw_obs_space, obs), dtype=np.float32)

    def _reset_state(self, mask):
        for i in np.flatnonzero(mask.cpu().numpy()).tolist():
            if not self._seeded[i]:
                obs, _ = self.envs[i].reset(seed=self._first_seeds[i])
                self._seeded[i] = True
            else:
                obs, _ = self.envs[i].reset()
            self._last_obs[i] = self._flat(obs)
            self._terminated[i] = False
            self._env_truncated[i] = False
        self._update_pos(mask.cpu().numpy())

    def _update_pos(self, rows: np.ndarray):
        if self.pos_fn is None:
            return
        if self._pos is None:
            k = np.asarray(self.pos_fn(self.envs[0].unwrapped), dtype=np.float32).size
            self._pos = np.zeros((self.num_envs, k), dtype=np.float32)
        for i in np.flatnonzero(rows).tolist():
            self._pos[i] = np.asarray(self.pos_fn(self.envs[i].unwrapped), dtype=np.float32).reshape(-1)

    def _obs(self):
        return torch.from_numpy(self._last_obs.copy()).to(self.device)

    def step(self, actions):
        n = self.num_envs
        acts = torch.as_tensor(actions).detach().cpu().numpy()
        discrete = isinstance(self.action_space, gym.spaces.Discrete)
        active = ~(self._terminated | self._env_truncated | (self.step_count >= self.max_episode_steps).cpu().numpy())
        reward = np.zeros(n)
        infos = {k: np.zeros(n, dtype=np.float32) for k in self.info_keys}
        for i in np.flatnonzero(active).tolist():
            if discrete:
                a = int(np.asarray(acts[i]).reshape(-1)[0])
            else:
                a = np.asarray(acts[i], dtype=self.action_space.dtype).reshape(self.action_space.shape)
            obs, r, term, trunc, info = self.envs[i].step(a)
            self._last_obs[i] = self._flat(obs)
            reward[i] = float(r)
            self._terminated[i] = bool(term)
            self._env_truncated[i] = bool(trunc)
            for k in self.info_keys:
                if k in info:
                    infos[k][i] = float(info[k])
        self._update_pos(active)
        truncated = self._advance_time() | torch.from_numpy(self._env_truncated).to(self.device)
        out = {k: torch.from_numpy(v).to(self.device) for k, v in infos.items()}
        if self._pos is not None:
            out["pos"] = torch.from_numpy(self._pos.copy()).to(self.device)
        return (self._obs(), torch.from_numpy(reward.astype(np.float32)).to(self.device),
                torch.from_numpy(self._terminated.copy()).to(self.device), truncated, out)

    def state_dict(self) -> dict:
        """Adapter state plus deep copies of the gymnasium envs when they can be copied (then the
        run continues exactly); otherwise ``envs`` is None and ``load_state_dict`` re-sets the tasks
        and starts new episodes."""
        try:
            envs = copy.deepcopy(self.envs)
        except (TypeError, ValueError, AttributeError, RuntimeError, pickle.PicklingError):
            envs = None
        return {"envs": envs, "task": self._task.copy(), "last_obs": self._last_obs.copy(),
                "terminated": self._terminated.copy(), "env_truncated": self._env_truncated.copy(),
                "pos": None if self._pos is None else self._pos.copy(), "seeded": list(self._seeded),
                "step_count": self.step_count.clone(), "task_rng": self.task_rng.bit_generator.state,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.task_rng.bit_generator.state = state["task_rng"]
        self.generator.set_state(state["generator"])
        all_copies = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        if state["envs"] is not None:
            for e in self.envs:
                e.close()
            self.envs = copy.deepcopy(state["envs"])
            self._task[...] = state["task"]
            self._last_obs[...] = state["last_obs"]
            self._terminated[...] = state["terminated"]
            self._env_truncated[...] = state["env_truncated"]
            self._pos = None if state["pos"] is None else np.array(state["pos"])
            self._seeded = list(state["seeded"])
            self.step_count.copy_(state["step_count"])
        else:
            warnings.warn("GymnasiumMetaEnv: the inner envs could not be checkpointed; tasks are restored "
                          "and new episodes started", stacklevel=2)
            self.set_task(all_copies, torch.from_numpy(np.asarray(state["task"])))
            self.reset_mdp()

    def close(self) -> None:
        for e in self.envs:
            e.close()
