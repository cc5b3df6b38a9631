"""Make dm_control 1.0.50 load on mujoco 4.

dm_control's generated binding tables (``dm_control.mujoco.wrapper.mjbindings.sizes.array_sizes``)
list every MjModel / MjData array field of the mujoco release it was generated for (3.17). Its
named indexers call ``getattr(struct, field)`` for each listed field, so ``suite.load`` fails on
mujoco 4 with ``AttributeError: 'MjModel' object has no attribute 'flex_vertedge'``: mujoco 4
removed 9 of the listed fields (7 MjModel, 2 MjData; all flex-vertex tables, unused by the suite).

``apply()`` drops from the table the fields that the installed mujoco does not have (checked on
an empty model, so it removes nothing on a mujoco that has them all). It is idempotent and is
called when ``environments.contextual`` is imported. ``REMOVED`` records what was dropped.
"""
from __future__ import annotations

import warnings

REMOVED: dict[str, list[str]] = {}


def missing_fields() -> dict[str, list[str]]:
    """{"mjmodel": [...], "mjdata": [...]}: fields dm_control lists that mujoco lacks."""
    import mujoco
    from dm_control.mujoco.wrapper.mjbindings import sizes

    model = mujoco.MjModel.from_xml_string("<mujoco/>")
    structs = {"mjmodel": model, "mjdata": mujoco.MjData(model)}
    return {name: [f for f in sizes.array_sizes[name] if not hasattr(obj, f)] for name, obj in structs.items()}


def apply() -> dict[str, list[str]]:
    """Drop the missing fields from dm_control's table; returns what was dropped (cumulative)."""
    with warnings.catch_warnings():  # dm_control's GLFW import warns on machines without a display
        warnings.simplefilter("ignore")
        from dm_control.mujoco.wrapper.mjbindings import sizes

    for struct, fields in missing_fields().items():
        for field in fields:
            sizes.array_sizes[struct].pop(field, None)
            REMOVED.setdefault(struct, []).append(field)
    return REMOVED
