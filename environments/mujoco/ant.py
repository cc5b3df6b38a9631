"""Ant meta-envs (VariBAD / HyperX), batched.

Physics: assets/ant.xml (gym ant + VariBAD's goal/origin sites; RK4, timestep 0.01, frame_skip 5
-> dt 0.05). Reset: qpos0 + U(-0.1, 0.1), qvel N(0, 0.1^2). Actions in [-1, 1]^8.
``mujoco.mj_rnePostConstraint`` is called after every step (and reset), so ``cfrc_ext`` holds the
contact forces (mujoco >= 2.0 leaves it zero otherwise: the "80 % of AntGoal's state is zero" bug).
contact cost = 0.5e-3 * sum(clip(cfrc_ext, -1, 1)^2) over all 14 bodies.
Torso position = ``data.xpos`` of the torso (mujoco-py's ``get_body_com``). H = 200.

- ``AntDir``: task g in {-1, +1} (task_dim 1). By default the target direction is (g, 0), i.e.
  forward/backward along x (what VariBAD's docstring describes). ``angle_quirk=True`` reproduces
  the reference code, which uses g as an angle in radians: direction (cos g, sin g) (+-57 deg).
  obs 27 = qpos[2:] (13) + qvel (14). reward = v_xy . dir - 0.5 |a|^2 - contact + 1 (survive).
  Terminates when the torso height qpos[2] is not in [0.2, 1.0] (or the state is not finite).
- ``AntGoal``: goal uniform in the disk of radius 3 (angle U(0, 2 pi), r = 3 sqrt(U)); task_dim 2.
  obs 113 = qpos (15) + qvel (14) + clip(cfrc_ext, -1, 1) (84).
  reward = -|xy - g|_1 - 0.1 |a|^2 - contact. No termination.
- ``AntGoalSparse`` (HyperX): same goals. obs 116 = torso COM (3) + qpos + qvel + clipped cfrc.
  d = ||xy - g||_2; goal reward 1 - d if d <= 0.75 else -0.75; reward = goal reward
  - 0.01 |a|^2 - contact. info: "success" (d <= 0.75), "sparse_reward" (= reward),
  "dense_reward" (= -d - 0.01 |a|^2 - contact; our addition, the original has no dense variant).

info["pos"] = [N, 2] torso xy.
"""
from __future__ import annotations

import math

import numpy as np

from environments.mujoco.base import MujocoMetaEnv
from environments.mujoco.plotting import plot_xy_rollout
from environments.registry import ENVS


class _AntBase(MujocoMetaEnv):
    xml_file = "ant.xml"
    frame_skip = 5
    fields = ("qpos", "qvel", "xpos", "cfrc_ext")
    need_cfrc_ext = True
    qpos_noise = 0.1
    qvel_noise = 0.1
    qvel_noise_type = "normal"
    pos_dim = 2
    obs_dim_: int = 0

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", max_episode_steps: int = 200,
                 num_threads: int | None = None):
        super().__init__(num_envs, seed, device, max_episode_steps, num_threads)
        self.torso = self.model.body("torso").id
        self._task = np.zeros((self.num_envs, self.task_dim))
        self._set_obs_space(self.obs_dim_)
        self.reset()

    def _torso_xyz(self):
        return self.buf["xpos"][:, self.torso]

    def _clipped_cfrc(self):
        return np.clip(self.buf["cfrc_ext"].reshape(self.num_envs, -1), -1.0, 1.0)

    def _contact_cost(self):
        return 0.5e-3 * np.square(self._clipped_cfrc()).sum(1)

    def _before_step(self):
        return self._torso_xyz().copy()

    def get_pos(self):
        return self._torso_xyz()[:, :2].copy()

    def set_task(self, mask, tasks):
        self._task[self._np_mask(mask)] = self._np_tasks(tasks)

    def get_task(self):
        return self._to_torch(self._task.astype(np.float32))


@ENVS.register("AntDir")
class AntDir(_AntBase):
    task_dim = 1
    obs_dim_ = 27

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", angle_quirk: bool = False, **kwargs):
        self.angle_quirk = bool(angle_quirk)
        super().__init__(num_envs, seed, device, **kwargs)

    def sample_tasks(self, n):
        return self._to_torch(self.task_rng.choice([-1.0, 1.0], size=(n, 1)).astype(np.float32))

    def directions(self) -> np.ndarray:
        g = self._task[:, 0]
        if self.angle_quirk:
            return np.stack([np.cos(g), np.sin(g)], 1)
        return np.stack([g, np.zeros_like(g)], 1)

    def _compute_obs(self):
        b = self.buf
        return np.concatenate([b["qpos"][:, 2:], b["qvel"]], axis=1)

    def _compute_step(self, a, xyz_before):
        vel = (self._torso_xyz() - xyz_before)[:, :2] / self.dt
        forward = (vel * self.directions()).sum(1)
        ctrl = 0.5 * np.square(a).sum(1)
        contact = self._contact_cost()
        reward = forward - ctrl - contact + 1.0
        qpos, qvel = self.buf["qpos"], self.buf["qvel"]
        finite = np.isfinite(qpos).all(1) & np.isfinite(qvel).all(1)
        z = qpos[:, 2]
        terminated = ~(finite & (z >= 0.2) & (z <= 1.0))
        return reward, terminated, {"reward_forward": forward, "reward_ctrl": -ctrl, "reward_contact": -contact}

    def plot_rollout(self, rollout, path):
        g = float(np.asarray(rollout["task"]).reshape(-1)[0])
        d = (math.cos(g), math.sin(g)) if self.angle_quirk else (g, 0.0)
        plot_xy_rollout(rollout, path, title=f"AntDir task {g:+.0f}", direction=d)


class _AntGoalBase(_AntBase):
    task_dim = 2

    def sample_tasks(self, n):
        a = self.task_rng.uniform(0.0, 1.0, size=n) * 2 * np.pi
        r = 3.0 * np.sqrt(self.task_rng.uniform(0.0, 1.0, size=n))
        return self._to_torch(np.stack([r * np.cos(a), r * np.sin(a)], 1).astype(np.float32))

    def plot_rollout(self, rollout, path):
        g = np.asarray(rollout["task"]).reshape(-1)[:2]
        plot_xy_rollout(rollout, path, title=f"{type(self).__name__} goal {np.round(g, 2).tolist()}", goal=g,
                        goal_radius=getattr(self, "goal_radius", None), lim=3.5)


@ENVS.register("AntGoal")
class AntGoal(_AntGoalBase):
    obs_dim_ = 113

    def _compute_obs(self):
        b = self.buf
        return np.concatenate([b["qpos"], b["qvel"], self._clipped_cfrc()], axis=1)

    def _compute_step(self, a, xyz_before):
        goal_reward = -np.abs(self._torso_xyz()[:, :2] - self._task).sum(1)
        ctrl = 0.1 * np.square(a).sum(1)
        contact = self._contact_cost()
        reward = goal_reward - ctrl - contact
        return reward, np.zeros(self.num_envs, bool), {"reward_goal": goal_reward, "reward_ctrl": -ctrl,
                                                       "reward_contact": -contact}


@ENVS.register("AntGoalSparse")
class AntGoalSparse(_AntGoalBase):
    obs_dim_ = 116

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", goal_radius: float = 0.75, **kwargs):
        self.goal_radius = float(goal_radius)
        super().__init__(num_envs, seed, device, **kwargs)

    def _compute_obs(self):
        b = self.buf
        return np.concatenate([self._torso_xyz(), b["qpos"], b["qvel"], self._clipped_cfrc()], axis=1)

    def _compute_step(self, a, xyz_before):
        dist = np.linalg.norm(self._torso_xyz()[:, :2] - self._task, axis=1)
        success = dist <= self.goal_radius
        goal_reward = np.where(success, 1.0 - dist, -self.goal_radius)
        costs = 0.01 * np.square(a).sum(1) + self._contact_cost()
        sparse = goal_reward - costs
        dense = -dist - costs
        return sparse, np.zeros(self.num_envs, bool), {"success": success, "sparse_reward": sparse,
                                                       "dense_reward": dense}
