"""Contextual control tasks (HyperZero): dm_control suite domains with a reward context (the
speed margin of the ``tolerance`` reward) and a dynamics context (a body length), stepped as a
batch in-process. Importing this package applies the mujoco-4 shim (``dmc_compat``) and
registers ContextualCheetahRun, ContextualWalkerWalk and ContextualFingerSpin.
"""
from environments.contextual import dmc_compat

dmc_compat.apply()

from environments.contextual import envs  # noqa: E402,F401
