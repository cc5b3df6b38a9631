"""Batched meta-environments. Importing this package registers every env."""
from environments.registry import ENVS, make_env  # noqa: F401
from environments.navigation import gridworld, point_robot  # noqa: F401

try:  # MuJoCo envs need the `mujoco` package
    import environments.mujoco  # noqa: F401
except ImportError:  # pragma: no cover
    pass
