"""Batched contextual DeepMind-Control tasks (the Contextual Control Suite used by HyperZero).

Each env is N copies stepped in one call: one ``MjData`` per copy and one ``MjModel`` per distinct
body length (``models.get_model``). Physics, episode start and observations follow dm_control's
``control.Environment`` + suite task exactly (the tests compare against dm_control step by step):

    reset    mj_resetData + mj_forward without actuation (dm_control's ``Physics.reset``: the first
             legacy step's mj_step2 uses these derived quantities); the task's joint randomisation with the copy's own
             ``np.random.RandomState`` (the same calls the suite task makes with its ``random``);
             mj_forward with actuation disabled
    step     ctrl = action; dm_control's "legacy step" (mj_step2, mj_step x (n_sub_steps - 1),
             mj_step1) -- n_sub_steps = control timestep / model timestep
    episode  1000 control steps, never terminated early (DMC discount is always 1)

Task (= context) vector, task_dim 2: [margin, length].

    margin   reward context. The speed term becomes dm_control's
             ``tolerance(dir * v, bounds=(|margin|, inf), margin=|margin|, sigmoid='linear',
             value_at_margin)`` with dir = sign(margin): a negative margin rewards moving
             backwards (cheetah, walker) or spinning the other way (finger).
    length   dynamics context (see ``models``): cheetah torso half-length, walker torso
             half-length, finger distal length.

    ContextualCheetahRun   v = torso subtree linear velocity x; reward = speed term.
                           Defaults margin 10, value_at_margin 0.1 (the Contextual Control Suite's
                           default; dm_control's cheetah-run is margin 10 with value_at_margin 0).
                           obs 17 = qpos[1:] + qvel.
    ContextualWalkerWalk   v = torso subtree linear velocity x; reward = stand * (5 move + 1) / 6,
                           stand = (3 tolerance(h, (1.2, inf), 0.6) + (1 + upright) / 2) / 4
                           (dm_control's walker); move = speed term, value_at_margin 0.5, default
                           margin 0.5 (the Contextual Control Suite's default: the bound is the
                           margin, not dm_control's walk speed 1).
                           obs 24 = body orientations (xx, xz of bodies 1..) + torso height + qvel.
    ContextualFingerSpin   v = hinge velocity; reward = speed term, default margin 15,
                           value_at_margin 0.1. obs 9 = joint positions (2) + tip position (2) +
                           velocities (3) + log1p touch (2).

Task vectors are float32; ``set_task`` rounds margin and length to 6 decimals, so a context
written as 0.35 means exactly 0.35 (one model per distinct rounded length).
Contexts are drawn from the grids ``margins`` x ``lengths`` (constructor arguments).
info["pos"]: x position of the agent (cheetah/walker) or hinge angle (finger), [N, 1].
"""
from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import torch
from dm_control.utils import rewards

from environments.base import MetaEnv
from environments.contextual.models import DEFAULT_LENGTH, get_model
from environments.registry import ENVS

CONTEXT_DECIMALS = 6  # task vectors are float32: contexts are rounded to 1e-6 (0.35 stays 0.35, not 0.3499999940)
_FIELDS = ("qpos", "qvel", "xpos", "xmat", "sensordata")


def speed_reward(velocity: np.ndarray, margins: np.ndarray, value_at_margin: float) -> np.ndarray:
    """The reward context's term for every copy: ``rewards.tolerance`` with each copy's margin
    (grouped by distinct margin, so the values are exactly dm_control's)."""
    out = np.zeros(len(velocity))
    for m in np.unique(margins):
        idx = margins == m
        direction = -1.0 if m < 0 else 1.0
        out[idx] = rewards.tolerance(direction * velocity[idx], bounds=(abs(m), float("inf")), margin=abs(m),
                                     sigmoid="linear", value_at_margin=value_at_margin)
    return out


class ContextualDMCEnv(MetaEnv):
    """Base class; a domain sets the class attributes and the ``_obs_from`` / ``_reward`` /
    ``_velocity`` / ``_init_copy`` hooks."""

    domain: str = ""
    control_timestep: float = 0.01
    default_margin: float = 1.0
    value_at_margin: float = 0.1
    task_dim = 2

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", max_episode_steps: int = 1000,
                 margins: list[float] | None = None, lengths: list[float] | None = None,
                 value_at_margin: float | None = None):
        super().__init__(num_envs, seed, device)
        self.max_episode_steps = int(max_episode_steps)
        self.margins = [float(m) for m in (margins if margins is not None else [self.default_margin])]
        self.lengths = [float(x) for x in (lengths if lengths is not None else [DEFAULT_LENGTH[self.domain]])]
        if any(m == 0.0 for m in self.margins):
            raise ValueError("margin 0 gives no speed term (excluded, as in HyperZero's datasets)")
        if value_at_margin is not None:
            self.value_at_margin = float(value_at_margin)
        ss = np.random.SeedSequence(int(seed))
        task_ss, copies_ss = ss.spawn(2)
        self.task_rng = np.random.default_rng(task_ss)
        # one legacy RandomState per copy: the exact calls dm_control's tasks make on their ``random``
        self.copy_seeds = [int(s.generate_state(1)[0]) for s in copies_ss.spawn(self.num_envs)]
        self.rngs = [np.random.RandomState(s) for s in self.copy_seeds]

        self.model = get_model(self.domain, DEFAULT_LENGTH[self.domain])
        self.n_sub_steps = int(round(self.control_timestep / self.model.opt.timestep))
        self.dt = self.control_timestep
        self.nu = self.model.nu
        self._task = np.tile([self.margins[0], self.lengths[0]], (self.num_envs, 1)).astype(np.float64)
        self.models = [get_model(self.domain, self._task[i, 1]) for i in range(self.num_envs)]
        self.datas = [mujoco.MjData(m) for m in self.models]
        m = self.model
        shapes = {"qpos": (m.nq,), "qvel": (m.nv,), "xpos": (m.nbody, 3), "xmat": (m.nbody, 9),
                  "sensordata": (m.nsensordata,)}
        self.buf = {f: np.zeros((self.num_envs,) + shapes[f]) for f in _FIELDS}
        self._steps_np = np.zeros(self.num_envs, dtype=np.int64)
        self.step_count = torch.from_numpy(self._steps_np)
        self._euler = m.opt.integrator != mujoco.mjtIntegrator.mjINT_RK4
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(self.nu,), dtype=np.float32)
        self._setup_indices()
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(self._obs_from(self.buf).shape[1],),
                                                dtype=np.float32)
        self.reset()

    # ----- hooks --------------------------------------------------------------------------
    def _setup_indices(self) -> None:
        """Look up body / sensor indices in ``self.model``."""

    def _init_copy(self, m: mujoco.MjModel, d: mujoco.MjData, rng: np.random.RandomState) -> None:
        raise NotImplementedError

    def _obs_from(self, b: dict) -> np.ndarray:
        raise NotImplementedError

    def _velocity(self, b: dict) -> np.ndarray:
        raise NotImplementedError

    def _reward(self, b: dict) -> np.ndarray:
        return speed_reward(self._velocity(b), self._task[:, 0], self.value_at_margin)

    def get_pos(self) -> np.ndarray:
        return self.buf["qpos"][:, :1].copy()

    # ----- physics ------------------------------------------------------------------------
    def legacy_step(self, m: mujoco.MjModel, d: mujoco.MjData, nstep: int) -> None:
        """dm_control's ``Physics.step`` with ``legacy_step=True``."""
        if self._euler:
            mujoco.mj_step2(m, d)
            if nstep > 1:
                mujoco.mj_step(m, d, nstep - 1)
        else:
            mujoco.mj_step(m, d, nstep)
        mujoco.mj_step1(m, d)

    @staticmethod
    def forward_without_actuation(m: mujoco.MjModel, d: mujoco.MjData) -> None:
        """dm_control's ``Physics.after_reset``."""
        old = m.opt.disableflags
        m.opt.disableflags = old | mujoco.mjtDisableBit.mjDSBL_ACTUATION
        try:
            mujoco.mj_forward(m, d)
        finally:
            m.opt.disableflags = old

    def _copy_out(self, i: int) -> None:
        d = self.datas[i]
        for f in _FIELDS:
            self.buf[f][i] = getattr(d, f).reshape(self.buf[f].shape[1:])

    def _reset_copy(self, i: int) -> None:
        m, d = self.models[i], self.datas[i]
        mujoco.mj_resetData(m, d)
        self.forward_without_actuation(m, d)  # dm_control's Physics.reset (stale step1 data matter below)
        self._init_copy(m, d, self.rngs[i])
        self.forward_without_actuation(m, d)
        self._copy_out(i)

    # ----- contract -----------------------------------------------------------------------
    def sample_tasks(self, n: int) -> torch.Tensor:
        margins = self.task_rng.choice(self.margins, size=n)
        lengths = self.task_rng.choice(self.lengths, size=n)
        return torch.from_numpy(np.stack([margins, lengths], 1).astype(np.float32)).to(self.device)

    def set_task(self, mask: torch.Tensor, tasks: torch.Tensor) -> None:
        idx = np.flatnonzero(mask.cpu().numpy())
        tasks = torch.as_tensor(tasks).detach().cpu().double().numpy().reshape(-1, self.task_dim)
        for j, i in enumerate(idx.tolist()):
            margin, length = round(float(tasks[j, 0]), CONTEXT_DECIMALS), round(float(tasks[j, 1]), CONTEXT_DECIMALS)
            if margin == 0.0:
                raise ValueError("margin 0 gives no speed term")
            model = get_model(self.domain, length)
            if model is not self.models[i]:
                self.models[i] = model
                self.datas[i] = mujoco.MjData(model)
            self._task[i] = (margin, length)

    def get_task(self) -> torch.Tensor:
        return torch.from_numpy(self._task.astype(np.float32)).to(self.device)

    def _reset_state(self, mask: torch.Tensor) -> None:
        for i in np.flatnonzero(mask.cpu().numpy()).tolist():
            self._reset_copy(i)

    def _obs(self) -> torch.Tensor:
        return torch.from_numpy(self._obs_from(self.buf).astype(np.float32)).to(self.device)

    def step(self, actions):
        a = actions.detach().cpu().numpy() if isinstance(actions, torch.Tensor) else np.asarray(actions)
        a = a.astype(np.float64).reshape(self.num_envs, self.nu)
        n = self.n_sub_steps
        for i in range(self.num_envs):
            m, d = self.models[i], self.datas[i]
            d.ctrl[:] = a[i]
            self.legacy_step(m, d, n)
            self._copy_out(i)
        reward = self._reward(self.buf)
        self._steps_np += 1
        truncated = torch.from_numpy(self._steps_np >= self.max_episode_steps).to(self.device)
        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        t = lambda x: torch.from_numpy(np.asarray(x, dtype=np.float32)).to(self.device)  # noqa: E731
        info = {"pos": t(self.get_pos()), "velocity": t(self._velocity(self.buf))}
        return self._obs(), t(reward), terminated, truncated, info

    # ----- checkpoints --------------------------------------------------------------------
    _STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION

    def state_dict(self) -> dict:
        size = mujoco.mj_stateSize(self.model, self._STATE_SPEC)
        phys = np.zeros((self.num_envs, size))
        for i, (m, d) in enumerate(zip(self.models, self.datas)):
            mujoco.mj_getState(m, d, phys[i], self._STATE_SPEC)
        return {"physics": phys, "task": self._task.copy(), "steps": self._steps_np.copy(),
                "buf": {k: v.copy() for k, v in self.buf.items()},
                "task_rng": self.task_rng.bit_generator.state, "rngs": [r.get_state() for r in self.rngs],
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.set_task(torch.ones(self.num_envs, dtype=torch.bool), torch.from_numpy(np.asarray(state["task"])))
        for i, (m, d) in enumerate(zip(self.models, self.datas)):
            mujoco.mj_setState(m, d, np.asarray(state["physics"][i], dtype=np.float64), self._STATE_SPEC)
            mujoco.mj_forward(m, d)
        for k, v in state["buf"].items():
            self.buf[k][...] = v
        self._steps_np[...] = state["steps"]
        self.task_rng.bit_generator.state = state["task_rng"]
        for r, s in zip(self.rngs, state["rngs"]):
            r.set_state(s)
        self.generator.set_state(state["generator"])


def _randomize_joints(m: mujoco.MjModel, d: mujoco.MjData, rng: np.random.RandomState) -> None:
    """dm_control's ``randomize_limited_and_rotational_joints`` for hinge and slide joints
    (the same random calls, joint by joint)."""
    hinge, slide = int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)
    for j in range(m.njnt):
        kind, adr = int(m.jnt_type[j]), int(m.jnt_qposadr[j])
        if kind not in (hinge, slide):
            raise NotImplementedError("ball / free joints are not used by the contextual tasks")
        if m.jnt_limited[j]:
            lo, hi = m.jnt_range[j]
            d.qpos[adr] = rng.uniform(lo, hi)
        elif kind == hinge:
            d.qpos[adr] = rng.uniform(-np.pi, np.pi)


@ENVS.register("ContextualCheetahRun")
class ContextualCheetahRun(ContextualDMCEnv):
    domain = "cheetah"
    control_timestep = 0.01
    default_margin = 10.0
    value_at_margin = 0.1

    def _setup_indices(self):
        self._speed_adr = int(self.model.sensor("torso_subtreelinvel").adr[0])

    def _init_copy(self, m, d, rng):
        limited = m.jnt_limited == 1
        lower, upper = m.jnt_range[limited].T
        d.qpos[limited] = rng.uniform(lower, upper)
        self.legacy_step(m, d, 200)
        d.time = 0.0

    def _obs_from(self, b):
        return np.concatenate([b["qpos"][:, 1:], b["qvel"]], 1)

    def _velocity(self, b):
        return b["sensordata"][:, self._speed_adr]


@ENVS.register("ContextualWalkerWalk")
class ContextualWalkerWalk(ContextualDMCEnv):
    domain = "walker"
    control_timestep = 0.025
    default_margin = 0.5
    value_at_margin = 0.5
    stand_height = 1.2

    def _setup_indices(self):
        self._torso = int(self.model.body("torso").id)
        self._speed_adr = int(self.model.sensor("torso_subtreelinvel").adr[0])

    def _init_copy(self, m, d, rng):
        _randomize_joints(m, d, rng)

    def _obs_from(self, b):
        orient = b["xmat"][:, 1:][:, :, [0, 2]].reshape(self.num_envs, -1)
        return np.concatenate([orient, b["xpos"][:, self._torso, 2:3], b["qvel"]], 1)

    def _velocity(self, b):
        return b["sensordata"][:, self._speed_adr]

    def _reward(self, b):
        h = self.stand_height
        standing = rewards.tolerance(b["xpos"][:, self._torso, 2], bounds=(h, float("inf")), margin=h / 2)
        upright = (1 + b["xmat"][:, self._torso, 8]) / 2
        stand = (3 * standing + upright) / 4
        move = super()._reward(b)
        return stand * (5 * move + 1) / 6

    def get_pos(self):
        return self.buf["qpos"][:, 1:2].copy()  # rootx (qpos = rootz, rootx, rooty, ...)


@ENVS.register("ContextualFingerSpin")
class ContextualFingerSpin(ContextualDMCEnv):
    domain = "finger"
    control_timestep = 0.02
    default_margin = 15.0
    value_at_margin = 0.1
    max_init_attempts = 1000

    def _setup_indices(self):
        m = self.model

        def adr(name):
            return int(m.sensor(name).adr[0])

        self._pos_idx = [adr("proximal"), adr("distal")]
        self._vel_idx = [adr("proximal_velocity"), adr("distal_velocity"), adr("hinge_velocity")]
        self._tip = [adr("tip"), adr("tip") + 2]
        self._spinner = [adr("spinner"), adr("spinner") + 2]
        self._touch = [adr("touchtop"), adr("touchbottom")]
        self._hinge_vel = adr("hinge_velocity")
        self._hinge_qpos = int(m.joint("hinge").qposadr[0])

    def _init_copy(self, m, d, rng):
        for _ in range(self.max_init_attempts):  # dm_control's _set_random_joint_angles
            _randomize_joints(m, d, rng)
            self.forward_without_actuation(m, d)
            if d.ncon == 0:
                return
        raise RuntimeError(f"no collision-free start after {self.max_init_attempts} attempts")

    def _obs_from(self, b):
        s = b["sensordata"]
        tip = s[:, self._tip] - s[:, self._spinner]
        return np.concatenate([s[:, self._pos_idx], tip, s[:, self._vel_idx], np.log1p(s[:, self._touch])], 1)

    def _velocity(self, b):
        return b["sensordata"][:, self._hinge_vel]

    def get_pos(self):
        return self.buf["qpos"][:, self._hinge_qpos:self._hinge_qpos + 1].copy()
