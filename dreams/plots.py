"""What the dreams look like on the point robot: the decoded reward over the plane.

``plot_dream_rewards(reward_fn, latents, path, train_goals, eval_goals)`` draws one panel per
latent: the reward ``reward_fn`` gives at that latent for an agent standing at each position
of a grid (prev_obs = next_obs = the position, zero action; extra observation dims such as the
done flag are 0), with the real training goals (dots) and held-out goals (crosses) on top.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch


def reward_map(reward_fn: Callable, z: torch.Tensor, xs: np.ndarray, ys: np.ndarray, obs_dim: int = 2,
               action_dim: int = 2) -> np.ndarray:
    """Reward at latent z [d] for positions (x, y) on a grid: [len(ys), len(xs)] (rows = y)."""
    gx, gy = np.meshgrid(np.asarray(xs, np.float32), np.asarray(ys, np.float32))
    n = gx.size
    obs = torch.zeros(n, obs_dim)
    obs[:, 0], obs[:, 1] = torch.from_numpy(gx.ravel()), torch.from_numpy(gy.ravel())
    z = torch.as_tensor(z, dtype=torch.float32).reshape(1, -1).expand(n, -1)
    with torch.no_grad():
        r = reward_fn(z, obs, torch.zeros(n, action_dim), obs)
    return r.reshape(gx.shape).detach().cpu().numpy()


def plot_dream_rewards(reward_fn: Callable, latents: torch.Tensor, path: str, train_goals=None, eval_goals=None,
                       obs_dim: int = 2, action_dim: int = 2, extent: tuple = (-1.5, 1.5, -0.5, 1.5),
                       resolution: int = 60, full_circle: bool = False, max_panels: int = 8) -> str:
    """Write a PNG with one reward map per latent (at most ``max_panels``); returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latents = torch.as_tensor(latents, dtype=torch.float32).reshape(-1, torch.as_tensor(latents).shape[-1])
    k = min(len(latents), max_panels)
    if full_circle and extent == (-1.5, 1.5, -0.5, 1.5):
        extent = (-1.5, 1.5, -1.5, 1.5)
    xs = np.linspace(extent[0], extent[1], resolution)
    ys = np.linspace(extent[2], extent[3], resolution)
    cols = min(k, 4)
    rows = math.ceil(k / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    angle = np.linspace(0, 2 * np.pi if full_circle else np.pi, 200)
    for i, ax in enumerate(axes.ravel()):
        if i >= k:
            ax.axis("off")
            continue
        img = ax.imshow(reward_map(reward_fn, latents[i], xs, ys, obs_dim, action_dim), origin="lower",
                        extent=extent, cmap="viridis", aspect="equal")
        fig.colorbar(img, ax=ax, fraction=0.046)
        ax.plot(np.cos(angle), np.sin(angle), "w--", lw=0.6, alpha=0.6)
        for goals, style, label in ((train_goals, dict(marker="o", c="white", s=12), "train"),
                                    (eval_goals, dict(marker="x", c="red", s=14), "held out")):
            if goals is not None and len(goals):
                g = np.asarray(torch.as_tensor(goals, dtype=torch.float32))
                ax.scatter(g[:, 0], g[:, 1], label=label, linewidths=0.8, **style)
        ax.set_title(f"dream {i}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if train_goals is not None or eval_goals is not None:
        axes.ravel()[0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
