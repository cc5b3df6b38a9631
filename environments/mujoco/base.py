"""Batched in-process MuJoCo meta-environments.

One ``MujocoMetaEnv`` owns N ``MjData`` (and one shared ``MjModel``, or one ``MjModel`` per copy
when the task changes physics parameters). ``step`` loops over the copies only to call
``mujoco.mj_step(model, data, nstep=frame_skip)`` (plus ``mj_rnePostConstraint`` where
``cfrc_ext`` is needed) and to copy the MjData arrays the env needs into stacked ``[N, ...]``
numpy buffers (``self.buf``). Observations, rewards and terminations are then computed for the
whole batch with numpy and returned as torch tensors (``torch.from_numpy``).

Threads: ``mj_step`` releases the GIL (verified), so with ``num_threads=2`` a worker thread and
the calling thread step the batch together, pulling copy indices from one shared iterator (a
dynamic split: a descheduled thread does not hold up a fixed half). On an idle 2-core box the
bare 2-thread mj_step loop ran ~1.4-1.6x faster than 1 thread (HalfCheetah, N=16); when the
cores are busy with other processes, 2 threads gave nothing or were slower (a static half/half
split was 2x slower). Hence the default ``num_threads=None`` = "auto" (if the machine has >= 2
cores and N >= 4): every ``AUTO_PERIOD`` steps, ``AUTO_PROBE`` steps alternate between 1 and 2
threads and the faster one (time per stepped copy) is used until the next probe. Results do not
depend on the thread count (copies are independent); pass ``num_threads=1`` or ``2`` to fix it.
``mujoco.rollout.Rollout(nthread=2)`` with one env-step per call was measured too: no faster than
the thread pool, and it returns only the state (no xpos / cfrc_ext), so it is not used.

Randomness: ``np.random.SeedSequence(seed)`` is split into two ``numpy.random.Generator``s,
``self.np_random`` (initial-state noise) and ``self.task_rng`` (task sampling), so the task
sequence does not depend on how many episodes were reset. The global numpy / python RNGs are
never used.

Checkpoints: ``state_dict`` / ``load_state_dict`` save and restore the per-copy MuJoCo integration
state (``mj_getState(..., mjSTATE_INTEGRATION)``, incl. the solver warm start), the stacked buffers,
tasks (re-applied, so rand-params physics is rebuilt), done flags and RNG states: a restored env
continues bit-for-bit.

Done copies: a copy that terminated early is not stepped again; it keeps returning its last
observation, reward 0 and ``terminated=True`` until ``reset``/``reset_mdp`` resets it.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import gymnasium as gym
import mujoco
import numpy as np
import torch

from environments.base import MetaEnv

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")

# MjData fields that can be mirrored into stacked buffers, and their per-copy shapes
_FIELD_SHAPES = {
    "qpos": lambda m: (m.nq,),
    "qvel": lambda m: (m.nv,),
    "xpos": lambda m: (m.nbody, 3),
    "xipos": lambda m: (m.nbody, 3),
    "cfrc_ext": lambda m: (m.nbody, 6),
    "cinert": lambda m: (m.nbody, 10),
    "cvel": lambda m: (m.nbody, 6),
    "qfrc_actuator": lambda m: (m.nv,),
}


def _default_num_threads(num_envs: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 2 if (cores >= 2 and num_envs >= 4) else 1


class MujocoMetaEnv(MetaEnv):
    """Base class. Subclasses set the class attributes and implement ``_compute_obs``,
    ``_compute_step`` (reward / termination / info from the stacked buffers),
    ``sample_tasks``, ``set_task`` and ``get_task``."""

    xml_file: str = ""
    frame_skip: int = 5
    fields: tuple = ("qpos", "qvel")        # MjData arrays mirrored into self.buf
    need_cfrc_ext: bool = False              # call mj_rnePostConstraint after stepping
    per_copy_models: bool = False            # one MjModel per copy (rand-params tasks)
    action_scale: float = 1.0                # data.ctrl = action_scale * action
    qpos_noise: float = 0.1                  # qpos0 + U(-qpos_noise, qpos_noise)
    qvel_noise: float = 0.1                  # scale of the qvel noise
    qvel_noise_type: str = "normal"          # "normal" (N(0, s^2)) or "uniform" (U(-s, s))
    pos_dim: int = 1                         # size of info["pos"]

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", max_episode_steps: int = 200,
                 num_threads: int | None = None):
        super().__init__(num_envs, seed, device)
        self.max_episode_steps = int(max_episode_steps)
        ss = np.random.SeedSequence(int(seed))
        noise_ss, task_ss = ss.spawn(2)
        self.np_random = np.random.default_rng(noise_ss)
        self.task_rng = np.random.default_rng(task_ss)

        path = self.xml_file if os.path.isabs(self.xml_file) else os.path.join(ASSETS, self.xml_file)
        self.model = mujoco.MjModel.from_xml_path(path)
        n = self.num_envs
        if self.per_copy_models:
            self.models = [mujoco.MjModel.from_xml_path(path) for _ in range(n)]
        else:
            self.models = [self.model] * n
        self.datas = [mujoco.MjData(m) for m in self.models]
        self.dt = self.model.opt.timestep * self.frame_skip
        self.init_qpos = self.model.qpos0.copy()
        self.init_qvel = np.zeros(self.model.nv)
        self.nu = self.model.nu

        self.buf = {f: np.zeros((n,) + _FIELD_SHAPES[f](self.model)) for f in self.fields}
        # (destination row of the stacked buffer, live MjData array) pairs, one list per copy
        self._views = [[(self.buf[f][i], getattr(d, f)) for f in self.fields] for i, d in enumerate(self.datas)]
        self._ctrl = [d.ctrl for d in self.datas]
        self._done = np.zeros(n, dtype=bool)
        self._all_idx = np.arange(n)
        if self.device.type == "cpu":  # numpy view of the step counter: cheaper than torch ops per step
            self._steps_np = np.zeros(n, dtype=np.int64)
            self.step_count = torch.from_numpy(self._steps_np)
        else:
            self._steps_np = None

        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(self.nu,), dtype=np.float32)
        self._auto = num_threads is None and _default_num_threads(n) > 1
        self.num_threads = 2 if self._auto else min(2, max(1, int(num_threads or 1)))  # 1 or 2
        self._pool = ThreadPoolExecutor(self.num_threads - 1) if self.num_threads > 1 else None
        self._auto_calls = 0
        self._auto_time = {1: 0.0, 2: 0.0}
        self._auto_count = {1: 0, 2: 0}
        self._auto_choice = 2

    # ----- simulation ------------------------------------------------------------------
    def _sim_copies(self, idx, ctrl):
        step, rne = mujoco.mj_step, mujoco.mj_rnePostConstraint
        fs, need_rne = self.frame_skip, self.need_cfrc_ext
        models, datas, ctrls, views = self.models, self.datas, self._ctrl, self._views
        for i in idx:
            m, d = models[i], datas[i]
            ctrls[i][:] = ctrl[i]
            step(m, d, fs)
            if need_rne:
                rne(m, d)
            for dst, src in views[i]:
                dst[...] = src

    AUTO_PERIOD = 2000
    AUTO_PROBE = 20

    def _simulate(self, ctrl: np.ndarray, idx: np.ndarray) -> None:
        """Step the copies in ``idx`` with controls ``ctrl`` [N, nu] (rows outside idx unused)."""
        if not self._auto:
            self._simulate_with(ctrl, idx, self.num_threads)
            return
        phase = self._auto_calls % self.AUTO_PERIOD
        self._auto_calls += 1
        if phase >= self.AUTO_PROBE or len(idx) == 0:
            self._simulate_with(ctrl, idx, self._auto_choice)
            return
        k = 1 + phase % 2
        t0 = time.perf_counter()
        self._simulate_with(ctrl, idx, k)
        self._auto_time[k] += time.perf_counter() - t0
        self._auto_count[k] += len(idx)
        if phase == self.AUTO_PROBE - 1:
            per = {j: self._auto_time[j] / max(self._auto_count[j], 1) for j in (1, 2)}
            self._auto_choice = 1 if per[1] <= per[2] else 2
            self._auto_time = {1: 0.0, 2: 0.0}
            self._auto_count = {1: 0, 2: 0}

    def _simulate_with(self, ctrl: np.ndarray, idx: np.ndarray, threads: int) -> None:
        idx = idx.tolist()
        if threads < 2 or self._pool is None or len(idx) < 4:
            self._sim_copies(idx, ctrl)
            return
        # dynamic split: both threads pull copy indices from one shared iterator (``next`` on a list
        # iterator is atomic under the GIL), so if one thread is descheduled the other one takes over
        # the remaining copies instead of waiting for a fixed half to finish
        it = iter(idx)
        future = self._pool.submit(self._sim_copies, it, ctrl)
        self._sim_copies(it, ctrl)
        future.result()

    def _reset_copies(self, idx: np.ndarray) -> None:
        k = len(idx)
        if k == 0:
            return
        nq, nv = self.model.nq, self.model.nv
        qpos = self.init_qpos + self.np_random.uniform(-self.qpos_noise, self.qpos_noise, size=(k, nq))
        if self.qvel_noise_type == "normal":
            qvel = self.init_qvel + self.qvel_noise * self.np_random.standard_normal((k, nv))
        else:
            qvel = self.init_qvel + self.np_random.uniform(-self.qvel_noise, self.qvel_noise, size=(k, nv))
        for j, i in enumerate(idx.tolist()):
            m, d = self.models[i], self.datas[i]
            mujoco.mj_resetData(m, d)
            d.qpos[:] = qpos[j]
            d.qvel[:] = qvel[j]
            mujoco.mj_forward(m, d)
            if self.need_cfrc_ext:
                mujoco.mj_rnePostConstraint(m, d)
            for dst, src in self._views[i]:
                dst[...] = src

    def set_state(self, i: int, qpos=None, qvel=None) -> None:
        """Overwrite the physics state of copy ``i`` (tests / scripted starts); refreshes the buffers.
        Does not change the step counter or the done flag."""
        m, d = self.models[i], self.datas[i]
        if qpos is not None:
            d.qpos[:] = qpos
        if qvel is not None:
            d.qvel[:] = qvel
        mujoco.mj_forward(m, d)
        if self.need_cfrc_ext:
            mujoco.mj_rnePostConstraint(m, d)
        for dst, src in self._views[i]:
            dst[...] = src

    # ----- contract ---------------------------------------------------------------------
    def _reset_state(self, mask):
        idx = np.flatnonzero(mask.cpu().numpy())
        self._reset_copies(idx)
        self._done[idx] = False
        self._on_reset(idx)

    def _on_reset(self, idx: np.ndarray) -> None:
        """Hook for per-episode bookkeeping (e.g. belief); idx = copies that were reset."""

    def _obs(self):
        obs = self._compute_obs().astype(np.float32)
        return self._to_torch(obs)

    def step(self, actions: torch.Tensor):
        if isinstance(actions, torch.Tensor):
            a = (actions.detach() if actions.device.type == "cpu" else actions.detach().cpu()).numpy()
        else:
            a = np.asarray(actions)
        a = a.astype(np.float64).reshape(self.num_envs, self.nu)
        any_done = bool(self._done.any())
        active = ~self._done
        idx = np.flatnonzero(active) if any_done else self._all_idx
        before = self._before_step()
        self._simulate(a if self.action_scale == 1.0 else self.action_scale * a, idx)
        reward, terminated, info = self._compute_step(a, before)
        terminated = np.asarray(terminated, dtype=bool) | self._done
        self._done = terminated.copy()
        obs = self._compute_obs().astype(np.float32)
        if any_done:
            reward = np.where(active, reward, 0.0)
        truncated = self._advance_time()
        t = self._to_torch
        info = {k: t(np.asarray(v).astype(np.float32)) for k, v in info.items()}
        info["pos"] = t(self.get_pos().astype(np.float32))
        return t(obs), t(reward.astype(np.float32)), t(terminated), truncated, info

    def _advance_time(self) -> torch.Tensor:
        if self._steps_np is None:
            return super()._advance_time()
        self._steps_np += 1
        return torch.from_numpy(self._steps_np >= self.max_episode_steps)

    def _to_torch(self, x: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(x)
        return x if self.device.type == "cpu" else x.to(self.device)

    # ----- hooks ------------------------------------------------------------------------
    def _before_step(self):
        """Quantities needed from before the step (returned as copies)."""
        return

    def _compute_obs(self) -> np.ndarray:
        raise NotImplementedError

    def _compute_step(self, actions: np.ndarray, before):
        """-> reward [N], terminated [N] bool, info dict of [N] / [N, k] numpy arrays."""
        raise NotImplementedError

    def get_pos(self) -> np.ndarray:
        """Agent position for plots, [N, pos_dim]."""
        raise NotImplementedError

    # ----- helpers ----------------------------------------------------------------------
    def _set_obs_space(self, dim: int):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(dim,), dtype=np.float32)

    @staticmethod
    def _np_mask(mask) -> np.ndarray:
        return np.flatnonzero(mask.cpu().numpy())

    def _np_tasks(self, tasks) -> np.ndarray:
        return torch.as_tensor(tasks).detach().cpu().double().numpy().reshape(-1, self.task_dim)

    # ----- checkpoints ------------------------------------------------------------------
    _STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION  # qpos, qvel, act, time, ctrl, warmstart, ...

    def state_dict(self) -> dict:
        """Everything needed to continue exactly: per-copy MuJoCo integration state, the stacked
        buffers, done flags, tasks (which re-create rand-params physics), RNG states, step counters."""
        spec = self._STATE_SPEC
        size = mujoco.mj_stateSize(self.model, spec)
        phys = np.zeros((self.num_envs, size))
        for i, (m, d) in enumerate(zip(self.models, self.datas)):
            mujoco.mj_getState(m, d, phys[i], spec)
        return {
            "physics": phys,
            "buf": {k: v.copy() for k, v in self.buf.items()},
            "done": self._done.copy(),
            "task": self._task.copy(),
            "step_count": self.step_count.clone(),
            "np_random": self.np_random.bit_generator.state,
            "task_rng": self.task_rng.bit_generator.state,
            "generator": self.generator.get_state(),
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        all_copies = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        self.set_task(all_copies, torch.from_numpy(np.asarray(state["task"])))
        for i, (m, d) in enumerate(zip(self.models, self.datas)):
            mujoco.mj_setState(m, d, np.asarray(state["physics"][i], dtype=np.float64), self._STATE_SPEC)
        for k, v in state["buf"].items():
            self.buf[k][...] = v
        self._done[...] = state["done"]
        self.step_count.copy_(state["step_count"])
        self.np_random.bit_generator.state = state["np_random"]
        self.task_rng.bit_generator.state = state["task_rng"]
        self.generator.set_state(state["generator"])
        self._load_extra_state(state["extra"])

    def _extra_state(self) -> dict:
        return {}

    def _load_extra_state(self, extra: dict) -> None:
        pass

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __del__(self):
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)
