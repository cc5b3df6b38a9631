"""HumanoidDir (VariBAD, from PEARL), batched.

Physics: assets/humanoid.xml (gym humanoid; RK4, timestep 0.003, frame_skip 5 -> dt 0.015).
Actions in [-1, 1]^17 are rescaled by 0.4 (the model's ctrlrange) before ``data.ctrl``.
Reset: qpos0 + U(-0.01, 0.01), qvel U(-0.01, 0.01) (gym's Humanoid reset).
``mj_rnePostConstraint`` is called after every step so ``cfrc_ext`` is filled.

task: direction angle ~ U(0, 2 pi) (task_dim 1), dir = (cos, sin).
obs 376 = qpos[2:] (22) + qvel (23) + cinert (14x10) + cvel (14x6) + qfrc_actuator (23)
+ cfrc_ext (14x6) (the v2/v3 gym Humanoid observation, incl. the world body rows).
reward (PEARL) = 0.25 * dir . (com_xy_after - com_xy_before) / model.opt.timestep
                 - 0.1 |ctrl|^2 - min(0.5e-6 |cfrc_ext|^2, 10) + 5,
where com is the mass-weighted body-COM (``xipos``) average. Note the PEARL quirk: the displacement
spans frame_skip physics steps but is divided by the physics timestep (not dt), so the velocity
term is 5x the true velocity; kept for comparability. Terminates when qpos[2] not in [1, 2].
info["pos"] = [N, 2] centre-of-mass xy. H = 200.
"""
from __future__ import annotations

import math

import numpy as np

from environments.mujoco.base import MujocoMetaEnv
from environments.mujoco.plotting import plot_xy_rollout
from environments.registry import ENVS


@ENVS.register("HumanoidDir")
class HumanoidDir(MujocoMetaEnv):
    xml_file = "humanoid.xml"
    frame_skip = 5
    fields = ("qpos", "qvel", "xipos", "cinert", "cvel", "qfrc_actuator", "cfrc_ext")
    need_cfrc_ext = True
    action_scale = 0.4
    qpos_noise = 0.01
    qvel_noise = 0.01
    qvel_noise_type = "uniform"
    pos_dim = 2
    task_dim = 1

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", max_episode_steps: int = 200,
                 num_threads: int | None = None):
        super().__init__(num_envs, seed, device, max_episode_steps, num_threads)
        self.body_mass = self.model.body_mass.copy()
        self._task = np.zeros((self.num_envs, 1))
        self._set_obs_space(376)
        self.reset()

    def _com_xy(self):
        m = self.body_mass
        return (self.buf["xipos"] * m[None, :, None]).sum(1)[:, :2] / m.sum()

    def _compute_obs(self):
        b, n = self.buf, self.num_envs
        return np.concatenate([b["qpos"][:, 2:], b["qvel"], b["cinert"].reshape(n, -1), b["cvel"].reshape(n, -1),
                               b["qfrc_actuator"], b["cfrc_ext"].reshape(n, -1)], axis=1)

    def _before_step(self):
        return self._com_xy()

    def _compute_step(self, a, com_before):
        g = self._task[:, 0]
        direction = np.stack([np.cos(g), np.sin(g)], 1)
        lin_vel = 0.25 * (direction * (self._com_xy() - com_before)).sum(1) / self.model.opt.timestep
        ctrl = 0.1 * np.square(self.action_scale * a).sum(1)
        impact = np.minimum(0.5e-6 * np.square(self.buf["cfrc_ext"].reshape(self.num_envs, -1)).sum(1), 10.0)
        reward = lin_vel - ctrl - impact + 5.0
        z = self.buf["qpos"][:, 2]
        terminated = (z < 1.0) | (z > 2.0) | ~np.isfinite(self.buf["qpos"]).all(1)
        return reward, terminated, {"reward_linvel": lin_vel, "reward_quadctrl": -ctrl, "reward_impact": -impact}

    def get_pos(self):
        return self._com_xy()

    def sample_tasks(self, n):
        return self._to_torch(self.task_rng.uniform(0.0, 2 * np.pi, size=(n, 1)).astype(np.float32))

    def set_task(self, mask, tasks):
        self._task[self._np_mask(mask)] = self._np_tasks(tasks)

    def get_task(self):
        return self._to_torch(self._task.astype(np.float32))

    def plot_rollout(self, rollout, path):
        g = float(np.asarray(rollout["task"]).reshape(-1)[0])
        plot_xy_rollout(rollout, path, title=f"HumanoidDir angle {g:.2f}", direction=(math.cos(g), math.sin(g)))
