"""Batched meta-environments. Importing this package registers every env."""
from environments.registry import ENVS, make_env  # noqa: F401
from environments.navigation import gridworld, grid_variants, point_robot, rooms, treasure_hunt  # noqa: F401
from environments import memory  # noqa: F401
from environments.navigation import nav2d, dog_feeding  # noqa: F401
from environments import control, metaworld_adapter  # noqa: F401

try:  # MuJoCo envs need the `mujoco` package
    import environments.mujoco  # noqa: F401
except ImportError:  # pragma: no cover
    pass
try:  # contextual DMC tasks (HyperZero) need `dm_control`
    import environments.contextual  # noqa: F401
except ImportError:  # pragma: no cover
    pass
