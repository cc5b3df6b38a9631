"""Batched MuJoCo meta-envs; importing this package registers them.

HalfCheetahDir, HalfCheetahVel, HalfCheetahDirSparse (cheetah.py), AntDir, AntGoal, AntGoalSparse
(ant.py), HumanoidDir (humanoid.py), Walker2DRandParams, HopperRandParams (rand_params.py).
See environments/mujoco/base.py for the batching / threading design.
"""
from environments.mujoco import ant, cheetah, humanoid, rand_params  # noqa: F401
