"""Rollout plots for the MuJoCo meta-envs (matplotlib is imported lazily, inside the functions).

``rollout`` follows the contract in environments/base.py: numpy arrays of ONE copy with
"pos" [T, k] (after each step), "episode" [T] (episode index inside the BAMDP), "task" [task_dim], "rewards" [T].
"""
from __future__ import annotations

import os

import numpy as np


def _episodes(rollout):
    """Split positions by episode: list of (episode index, positions after each step [t_k, k])."""
    pos = np.asarray(rollout["pos"], dtype=float)
    if pos.ndim == 1:
        pos = pos[:, None]
    T = pos.shape[0]
    ep = np.asarray(rollout.get("episode", np.zeros(T)), dtype=int).reshape(-1)[:T]
    return [(int(k), pos[np.flatnonzero(ep == k)]) for k in np.unique(ep)]


def _save(fig, path):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fig.savefig(path)


def plot_x_rollout(rollout, path, title: str = "", vlines=()):
    """x-position over time, one curve per episode (cheetahs / walker / hopper)."""
    import matplotlib.pyplot as plt

    eps = _episodes(rollout)
    fig, ax = plt.subplots(figsize=(7, 4))
    for k, p in eps:
        ax.plot(np.arange(len(p)), p[:, 0], label=f"episode {k}")
    for x in vlines:
        ax.axhline(x, color="k", ls="--", alpha=0.4)
    ax.set_xlabel("step")
    ax.set_ylabel("x-position")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_xy_rollout(rollout, path, title: str = "", goal=None, goal_radius=None, direction=None, lim=None):
    """xy path per episode with the goal (and goal radius) or the target direction (ants / humanoid)."""
    import matplotlib.pyplot as plt

    eps = _episodes(rollout)
    fig, ax = plt.subplots(figsize=(5, 5))
    for k, p in eps:
        ax.plot(p[:, 0], p[:, 1], lw=1, label=f"episode {k}")
        ax.plot(p[0, 0], p[0, 1], "bo", ms=3)
    if goal is not None:
        goal = np.asarray(goal, dtype=float).reshape(-1)
        ax.plot(goal[0], goal[1], "rx", ms=10)
        if goal_radius is not None:
            ax.add_patch(plt.Circle((goal[0], goal[1]), goal_radius, color="c", alpha=0.3))
    if direction is not None:
        d = np.asarray(direction, dtype=float).reshape(-1)
        ax.arrow(0, 0, d[0], d[1], width=0.03, color="r", length_includes_head=True)
    if lim is not None:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x-position")
    ax.set_ylabel("y-position")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
