"""Walker2DRandParams / HopperRandParams (VariBAD, from rand_param_envs), batched.

Physics: assets/walker2d_rand_params.xml / hopper_rand_params.xml: the mujoco131-era models
rewritten in local coordinates, integrator RK4, timestep 0.004 (as the originals), frame_skip 4
(hard-coded by rand_param_envs' RandomEnv) -> dt = 0.016.
Every copy owns its own ``MjModel``.

Task (log-scale factors, rand_param_envs RandomEnv with log_scale_limit 3): one exponent per array
element, e ~ U(-3, 3):
    body_mass    = default * 1.5 ** e   (nbody)
    body_inertia = default * 1.5 ** e   (nbody x 3)
    dof_damping  = default * 1.3 ** e   (nv)
    geom_friction= default * 1.5 ** e   (ngeom x 3)
The task vector is the concatenation of the exponents in this order (task_dim 65 for the walker,
41 for the hopper); zeros = default physics. We always scale the pristine default arrays (copied
once at construction), so task changes never compound (the model arrays are live views; the
original code aliased its "init" params to them under mujoco>=2). ``mujoco.mj_setConst`` is called
after every change (on a scratch MjData, so the live state is not touched), which recomputes the
derived constants (body_subtreemass, dof_invweight0, actuator_acc0, ...).

Reset: qpos0 + U(-0.005, 0.005), qvel U(-0.005, 0.005).
obs = qpos[1:] + clip(qvel, -10, 10): 17 (walker) / 11 (hopper).
reward = (x_after - x_before) / dt + 1 - 1e-3 |a|^2.
Termination (as the originals):
    walker: not (0.8 < z < 2.0 and -1 < angle < 1)       (z = qpos[1], angle = qpos[2])
    hopper: not (state finite and |state[2:]| < 100 and z > 0.7 and |angle| < 0.2),
            state = (qpos, qvel).
info["pos"] = [N, 1] x-position. H = 200.
"""
from __future__ import annotations

import mujoco
import numpy as np

from environments.mujoco.base import MujocoMetaEnv
from environments.mujoco.plotting import plot_x_rollout
from environments.registry import ENVS

RAND_PARAMS = ("body_mass", "body_inertia", "dof_damping", "geom_friction")
_BASES = {"body_mass": 1.5, "body_inertia": 1.5, "dof_damping": 1.3, "geom_friction": 1.5}


class _RandParamsBase(MujocoMetaEnv):
    task_changes = "dynamics"  # body masses, inertias, damping and friction
    frame_skip = 4
    fields = ("qpos", "qvel")
    per_copy_models = True
    qpos_noise = 0.005
    qvel_noise = 0.005
    qvel_noise_type = "uniform"
    pos_dim = 1
    log_scale_limit = 3.0

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", max_episode_steps: int = 200,
                 num_threads: int | None = None, log_scale_limit: float = 3.0):
        self.log_scale_limit = float(log_scale_limit)
        super().__init__(num_envs, seed, device, max_episode_steps, num_threads)
        # pristine defaults (copies: model arrays are live views)
        self.default_params = {k: getattr(self.model, k).copy() for k in RAND_PARAMS}
        self._sizes = [self.default_params[k].size for k in RAND_PARAMS]
        self.task_dim = int(sum(self._sizes))
        self._task = np.zeros((self.num_envs, self.task_dim))
        self._scratch = [mujoco.MjData(m) for m in self.models]
        self._set_obs_space(self.model.nq - 1 + self.model.nv)
        self.reset()

    # ----- tasks ------------------------------------------------------------------------
    def sample_tasks(self, n):
        lim = self.log_scale_limit
        return self._to_torch(self.task_rng.uniform(-lim, lim, size=(n, self.task_dim)).astype(np.float32))

    def task_to_params(self, task: np.ndarray) -> dict:
        """Exponent vector [task_dim] -> dict of physical parameter arrays."""
        out, start = {}, 0
        for k, size in zip(RAND_PARAMS, self._sizes):
            default = self.default_params[k]
            e = np.asarray(task[start:start + size], dtype=np.float64).reshape(default.shape)
            out[k] = default * np.power(_BASES[k], e)
            start += size
        return out

    def set_task(self, mask, tasks):
        idx = self._np_mask(mask)
        tasks = self._np_tasks(tasks)
        for j, i in enumerate(idx.tolist()):
            m = self.models[i]
            for k, v in self.task_to_params(tasks[j]).items():
                getattr(m, k)[...] = v
            mujoco.mj_setConst(m, self._scratch[i])
            self._task[i] = tasks[j]

    def get_task(self):
        return self._to_torch(self._task.astype(np.float32))

    # ----- dynamics ---------------------------------------------------------------------
    def _compute_obs(self):
        b = self.buf
        return np.concatenate([b["qpos"][:, 1:], np.clip(b["qvel"], -10.0, 10.0)], axis=1)

    def _before_step(self):
        return self.buf["qpos"][:, 0].copy()

    def _compute_step(self, a, x_before):
        qpos = self.buf["qpos"]
        vel = (qpos[:, 0] - x_before) / self.dt
        ctrl = 1e-3 * np.square(a).sum(1)
        reward = vel + 1.0 - ctrl
        return reward, self._fallen(), {"forward_vel": vel, "reward_ctrl": -ctrl}

    def _fallen(self) -> np.ndarray:
        raise NotImplementedError

    def get_pos(self):
        return self.buf["qpos"][:, :1].copy()

    def plot_rollout(self, rollout, path):
        plot_x_rollout(rollout, path, title=type(self).__name__)


@ENVS.register("Walker2DRandParams")
class Walker2DRandParams(_RandParamsBase):
    xml_file = "walker2d_rand_params.xml"

    def _fallen(self):
        q = self.buf["qpos"]
        z, ang = q[:, 1], q[:, 2]
        return ~((z > 0.8) & (z < 2.0) & (ang > -1.0) & (ang < 1.0))


@ENVS.register("HopperRandParams")
class HopperRandParams(_RandParamsBase):
    xml_file = "hopper_rand_params.xml"

    def _fallen(self):
        q, v = self.buf["qpos"], self.buf["qvel"]
        s = np.concatenate([q, v], 1)
        z, ang = q[:, 1], q[:, 2]
        ok = np.isfinite(s).all(1) & (np.abs(s[:, 2:]) < 100).all(1) & (z > 0.7) & (np.abs(ang) < 0.2)
        return ~ok
