"""Meta-World v3 benchmarks (ML1, ML10) as batched meta-envs, through the gymnasium adapter.

Registered names: ``MetaWorldML1`` (kwarg ``env_name``, default "reach-v3") and ``MetaWorldML10``.
Needs the optional package ``metaworld`` (3.1.1); it is imported only when such an env is built.

- A task is the numeric vector [class index, task index]: the class index counts the
  benchmark's train classes then its test classes (``class_names``); the task index points into
  ``mw_tasks`` = the benchmark's train tasks followed by its test tasks (``num_tasks`` in all,
  ``task_to_id`` returns it). Meta-World's own task objects are opaque pickles, so the index is
  the only numeric handle that maps back to them.
- ``sample_tasks(n)`` draws uniformly among the train tasks (ML10: 10 classes x 50 goals, as
  MIME did) from the env's torch generator. ``test_tasks()`` = the first
  ``test_tasks_per_class`` test tasks of every test class (ML1 default 10; ML10 default 1, i.e.
  MIME's "one task per test env").
- Each env copy is a ``MetaWorldTaskEnv``: it keeps one Meta-World env per class it was asked
  for (built lazily) and switches between them on ``set_task``. Copy i's first reset is seeded
  from the run seed; a class instance built later is seeded from that seed + its class index.
- Observations: Meta-World's 39-d vector (goal hidden, ``partially_observable``), float32.
  info: "success" (Meta-World's per-step flag) and the near/grasp terms listed in INFO_KEYS.
- ``max_episode_steps`` defaults to Meta-World v3's 500 (MIME's vendored v1 ML10 used 150).

MuJoCo compatibility: metaworld 3.1.1 pins mujoco 3.3.0 (and omits its ``packaging``
dependency). Since MuJoCo grew the rows of ``model.eq_data`` from 11 to 12 numbers, its
``reset_mocap_welds`` fails with "could not broadcast input array from shape (11,) into shape
(12,)". ``patch_mocap_welds`` replaces that method by one that writes the same 11 numbers
(anchor, relative pose, torque scale) and leaves the new trailing entry 0 (MuJoCo's XML
default), which lets ML1/ML10 run on mujoco 4.0. Install without replacing mujoco:
``pip install --no-deps metaworld==3.1.1`` (imageio, scipy, gymnasium are its other needs).
"""
from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import torch

from environments.gym_adapter import GymnasiumMetaEnv
from environments.registry import ENVS

INFO_KEYS = ("success", "near_object", "grasp_success")
_WELD_ROW = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 5.0)   # Meta-World's mocap weld data


def import_metaworld():
    """The ``metaworld`` module, patched for the installed MuJoCo, or a clear ImportError."""
    try:
        import metaworld
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError("Meta-World envs need the optional package metaworld: "
                          "`pip install --no-deps metaworld==3.1.1` keeps the installed mujoco") from err
    patch_mocap_welds()
    return metaworld


def patch_mocap_welds() -> bool:
    """Make Meta-World's mocap weld reset fit MuJoCo's eq_data row length. True if patched."""
    import mujoco
    from metaworld import sawyer_xyz_env

    base = sawyer_xyz_env.SawyerMocapBase
    if getattr(base.reset_mocap_welds, "_padded", False):
        return True
    if int(mujoco.mjNEQDATA) == len(_WELD_ROW):
        return False

    def reset_mocap_welds(self) -> None:
        model = self.model
        if model.nmocap > 0 and model.eq_data is not None:
            row = np.zeros(model.eq_data.shape[1])
            row[: len(_WELD_ROW)] = _WELD_ROW
            for i in range(model.eq_data.shape[0]):
                if model.eq_type[i] == mujoco.mjtEq.mjEQ_WELD:
                    model.eq_data[i] = row

    reset_mocap_welds._padded = True
    base.reset_mocap_welds = reset_mocap_welds
    return True


class MetaWorldTaskEnv(gym.Env):
    """One env copy that can take any task of a benchmark (one Meta-World env per class used)."""

    def __init__(self, classes: dict, tasks: list):
        self._classes, self._tasks, self._names = classes, tasks, list(classes)
        self._cache: dict[str, gym.Env] = {}
        self._seed: int | None = None
        self._seeded: set[str] = set()
        self.set_task(np.array([0.0, 0.0]))
        self.observation_space, self.action_space = self._active.observation_space, self._active.action_space

    @property
    def active(self) -> gym.Env:
        """The Meta-World env of the current task (e.g. for its ``_target_pos``, ``tcp_center``)."""
        return self._active

    def set_task(self, task: np.ndarray) -> None:
        mw_task = self._tasks[int(round(float(task[1])))]
        if mw_task.env_name not in self._cache:
            self._cache[mw_task.env_name] = self._classes[mw_task.env_name]()
        self._active = self._cache[mw_task.env_name]
        self._active_name = mw_task.env_name
        self._active.set_task(mw_task)

    def reset(self, *, seed: int | None = None, options=None):
        if seed is not None:
            self._seed, self._seeded = int(seed), set()
        if self._seed is not None and self._active_name not in self._seeded:
            self._seeded.add(self._active_name)
            return self._active.reset(seed=self._seed + self._names.index(self._active_name))
        return self._active.reset()

    def step(self, action):
        return self._active.step(action)

    def close(self) -> None:
        for env in self._cache.values():
            env.close()

    def __deepcopy__(self, memo):
        """Checkpoint copy (the adapter's ``state_dict``). Meta-World's own pickling rebuilds the
        model from XML and restores qpos/qvel only, losing the mocap targets, the warm start and
        the weld rows set at reset; copy the whole integration state so a run continues exactly."""
        new = MetaWorldTaskEnv.__new__(MetaWorldTaskEnv)
        memo[id(self)] = new
        shared = ("_classes", "_tasks", "_cache", "_active")
        new.__dict__.update({k: copy.deepcopy(v, memo) for k, v in self.__dict__.items() if k not in shared})
        new._classes, new._tasks = self._classes, self._tasks   # read-only, shared
        new._cache = {name: _copy_mw_env(env) for name, env in self._cache.items()}
        new._active = new._cache[self._active_name]
        return new


def _copy_mw_env(env: gym.Env) -> gym.Env:
    """Deep copy of one Meta-World env including its full MuJoCo integration state."""
    import mujoco

    twin = copy.deepcopy(env)
    twin.model.eq_data[:] = env.model.eq_data
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(env.model, spec))
    mujoco.mj_getState(env.model, env.data, state, spec)
    mujoco.mj_setState(twin.model, twin.data, state, spec)
    mujoco.mj_forward(twin.model, twin.data)
    return twin


class MetaWorldEnv(GymnasiumMetaEnv):
    """A Meta-World benchmark ("ML1" with ``env_name``, or "ML10") as a batched meta-env."""

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", benchmark: str = "ML1", env_name: str = "reach-v3",
                 max_episode_steps: int = 500, test_tasks_per_class: int = 10, benchmark_seed: int = 0):
        metaworld = import_metaworld()
        if benchmark == "ML1":
            bench = metaworld.ML1(env_name, seed=benchmark_seed)
        elif benchmark == "ML10":
            bench = metaworld.ML10(seed=benchmark_seed)
        else:
            raise ValueError(f"benchmark must be 'ML1' or 'ML10', got {benchmark!r}")
        classes = {**bench.train_classes, **bench.test_classes}
        self.class_names = list(classes)
        self.test_class_names = list(bench.test_classes)
        self.mw_tasks = list(bench.train_tasks) + list(bench.test_tasks)
        self.num_train_tasks = len(bench.train_tasks)
        self.task_table = torch.tensor([[self.class_names.index(t.env_name), i] for i, t in enumerate(self.mw_tasks)],
                                       dtype=torch.float32)
        self.test_tasks_per_class = int(test_tasks_per_class)
        n_train = self.num_train_tasks
        super().__init__(lambda: MetaWorldTaskEnv(classes, self.mw_tasks), num_envs, seed, device,
                         task_sampler=lambda rng, n: self.task_table[rng.integers(n_train, size=n)].numpy(),
                         task_dim=2, max_episode_steps=max_episode_steps, info_keys=INFO_KEYS,
                         num_tasks=len(self.mw_tasks))

    def sample_tasks(self, n: int) -> torch.Tensor:
        idx = torch.randint(self.num_train_tasks, (n,), generator=self.generator)
        return self.task_table[idx].clone()

    def test_tasks(self) -> torch.Tensor:
        """[K, 2]: the first ``test_tasks_per_class`` test tasks of every test class."""
        rows = []
        for name in self.test_class_names:
            idx = [i for i in range(self.num_train_tasks, len(self.mw_tasks)) if self.mw_tasks[i].env_name == name]
            rows += idx[: self.test_tasks_per_class]
        return self.task_table[rows].clone().to(self.device)

    def task_to_id(self, tasks: torch.Tensor) -> torch.Tensor:
        return tasks[..., 1].round().long()


@ENVS.register("MetaWorldML1")
class MetaWorldML1(MetaWorldEnv):
    def __init__(self, num_envs: int, seed: int = 0, device="cpu", env_name: str = "reach-v3", **kwargs):
        super().__init__(num_envs, seed, device, benchmark="ML1", env_name=env_name, **kwargs)


@ENVS.register("MetaWorldML10")
class MetaWorldML10(MetaWorldEnv):
    def __init__(self, num_envs: int, seed: int = 0, device="cpu", **kwargs):
        super().__init__(num_envs, seed, device, benchmark="ML10", **{"test_tasks_per_class": 1, **kwargs})
