"""Half-cheetah meta-envs (VariBAD / HyperX), batched.

Physics: assets/half_cheetah.xml (gym half_cheetah; timestep 0.01, frame_skip 5 -> dt 0.05).
Reset: qpos0 + U(-0.1, 0.1), qvel N(0, 0.1^2) (as gym's HalfCheetah). Actions in [-1, 1]^6
(the model clamps ctrl to [-1, 1]; the control cost uses the action as given, as the originals do).
Forward velocity v_x = (x_after - x_before) / dt with x = qpos[0]. H = 200.

- ``HalfCheetahDir``: task = direction in {-1, +1} (task_dim 1). obs 20 = qpos[1:] (8) + qvel (9)
  + torso COM xyz (3) (VariBAD's ``get_body_com("torso")`` = ``data.xpos`` of the torso).
  reward = dir * v_x - 0.05 |a|^2.
- ``HalfCheetahVel``: task = target velocity v* ~ U(0, 3) (task_dim 1). The VariBAD docstring
  says U[0, 2], but its code samples ``random.uniform(0.0, 3.0)``; we follow the code, since that
  is what the published curves were trained on. Pass ``max_vel=2.0`` to get the documented range.
  obs 20 as above. reward = -|v_x - v*| - 0.05 |a|^2.
- ``HalfCheetahDirSparse`` (HyperX): obs 21 = torso COM (3) + qpos (9) + qvel (9). Inside
  |x| < 5 (x = torso COM x) the reward is only -ctrl (0.05 |a|^2); outside it is the dense
  dir * v_x - ctrl. ``belief_dim = 2``: P(dir = -1), P(dir = +1); uniform [0.5, 0.5] after a task
  reset, one-hot on the true direction once |x| >= 5 was reached (kept across the MDP episodes of
  the task, as in HyperX). info: "sparse_reward" (= reward), "dense_reward".

info["pos"] = [N, 1] x-position (qpos[0]).
"""
from __future__ import annotations

import numpy as np

from environments.mujoco.base import MujocoMetaEnv
from environments.mujoco.plotting import plot_x_rollout
from environments.registry import ENVS


class _HalfCheetahBase(MujocoMetaEnv):
    xml_file = "half_cheetah.xml"
    frame_skip = 5
    fields = ("qpos", "qvel", "xpos")
    qpos_noise = 0.1
    qvel_noise = 0.1
    qvel_noise_type = "normal"
    pos_dim = 1
    ctrl_cost_weight = 0.05
    task_dim = 1

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", max_episode_steps: int = 200,
                 num_threads: int | None = None):
        super().__init__(num_envs, seed, device, max_episode_steps, num_threads)
        self.torso = self.model.body("torso").id
        self._task = np.zeros((self.num_envs, self.task_dim))
        self._set_obs_space(self._obs_dim())
        self.reset()

    def _obs_dim(self):
        return 20

    def _compute_obs(self):
        b = self.buf
        return np.concatenate([b["qpos"][:, 1:], b["qvel"], b["xpos"][:, self.torso]], axis=1)

    def _before_step(self):
        return self.buf["qpos"][:, 0].copy()

    def _forward_vel(self, x_before):
        return (self.buf["qpos"][:, 0] - x_before) / self.dt

    def _ctrl_cost(self, a):
        return self.ctrl_cost_weight * np.square(a).sum(1)

    def get_pos(self):
        return self.buf["qpos"][:, :1].copy()

    def set_task(self, mask, tasks):
        self._task[self._np_mask(mask)] = self._np_tasks(tasks)

    def get_task(self):
        return self._to_torch(self._task.astype(np.float32))

    def plot_rollout(self, rollout, path):
        task = np.asarray(rollout.get("task", [])).reshape(-1)
        plot_x_rollout(rollout, path, title=f"{type(self).__name__} task {np.round(task, 3).tolist()}")


@ENVS.register("HalfCheetahDir")
class HalfCheetahDir(_HalfCheetahBase):
    def sample_tasks(self, n):
        return self._to_torch(self.task_rng.choice([-1.0, 1.0], size=(n, 1)).astype(np.float32))

    def _compute_step(self, a, x_before):
        vel = self._forward_vel(x_before)
        forward = self._task[:, 0] * vel
        ctrl = self._ctrl_cost(a)
        n = self.num_envs
        return forward - ctrl, np.zeros(n, bool), {"forward_vel": vel, "reward_ctrl": -ctrl}


@ENVS.register("HalfCheetahVel")
class HalfCheetahVel(_HalfCheetahBase):
    def __init__(self, num_envs: int, seed: int = 0, device="cpu", max_vel: float = 3.0, **kwargs):
        self.max_vel = float(max_vel)
        super().__init__(num_envs, seed, device, **kwargs)

    def sample_tasks(self, n):
        return self._to_torch(self.task_rng.uniform(0.0, self.max_vel, size=(n, 1)).astype(np.float32))

    def _compute_step(self, a, x_before):
        vel = self._forward_vel(x_before)
        ctrl = self._ctrl_cost(a)
        reward = -np.abs(vel - self._task[:, 0]) - ctrl
        return reward, np.zeros(self.num_envs, bool), {"forward_vel": vel, "reward_ctrl": -ctrl}


@ENVS.register("HalfCheetahDirSparse")
class HalfCheetahDirSparse(HalfCheetahDir):
    belief_dim = 2

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", sparse_dist: float = 5.0, **kwargs):
        self.sparse_dist = float(sparse_dist)
        self._belief = np.full((num_envs, 2), 0.5)
        super().__init__(num_envs, seed, device, **kwargs)

    def _obs_dim(self):
        return 21

    def _compute_obs(self):
        b = self.buf
        return np.concatenate([b["xpos"][:, self.torso], b["qpos"], b["qvel"]], axis=1)

    def set_task(self, mask, tasks):
        super().set_task(mask, tasks)
        self._belief[self._np_mask(mask)] = 0.5

    def _update_belief(self):
        x = self.buf["xpos"][:, self.torso, 0]
        revealed = (np.abs(x) >= self.sparse_dist) & (self._belief[:, 0] == 0.5)
        if revealed.any():
            right = self._task[:, 0] > 0
            onehot = np.stack([~right, right], 1).astype(float)
            self._belief[revealed] = onehot[revealed]

    def _compute_step(self, a, x_before):
        dense, terminated, info = super()._compute_step(a, x_before)
        self._update_belief()
        x = self.buf["xpos"][:, self.torso, 0]
        sparse = np.where(np.abs(x) < self.sparse_dist, -self._ctrl_cost(a), dense)
        info.update(sparse_reward=sparse, dense_reward=dense)
        return sparse, terminated, info

    def get_belief(self):
        return self._to_torch(self._belief.astype(np.float32))

    def _extra_state(self):
        return {"belief": self._belief.copy()}

    def _load_extra_state(self, extra):
        self._belief[...] = extra["belief"]

    def plot_rollout(self, rollout, path):
        task = np.asarray(rollout.get("task", [])).reshape(-1)
        plot_x_rollout(rollout, path, title=f"HalfCheetahDirSparse task {np.round(task, 3).tolist()}",
                       vlines=(-self.sparse_dist, self.sparse_dist))
