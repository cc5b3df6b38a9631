"""Plots written into <run_dir>/plots/: learning curves, behaviour, beliefs, latents and
the VAE loss per ELBO term. matplotlib is imported lazily with the Agg backend."""
from __future__ import annotations

import csv
import os

import numpy as np
import torch


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=80, bbox_inches="tight")
    os.replace(tmp, path)
    _plt().close(fig)


def plot_learning_curves(csv_path: str, out: str) -> None:
    if not os.path.exists(csv_path):
        return
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    if len(rows) < 2:
        return
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    frames = np.array([float(r["frames"]) for r in rows])
    for key in [k for k in rows[0] if k.startswith("return_episode_")]:
        vals = np.array([float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows])
        ax.plot(frames, vals, label=key.replace("return_", ""))
    ax.set_xlabel("frames")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))  # 1e6 under the axis, not 7-digit labels
    ax.set_ylabel("evaluation return")
    if ax.get_lines():
        ax.legend()
    _save(fig, out)


def plot_behaviour(agent, env, trace: dict, folder: str, it: int) -> None:
    """Behaviour, beliefs, latents, bonus and VAE loss of one recorded BAMDP of ``agent`` on
    ``env`` (the inner, unwrapped env)."""
    os.makedirs(folder, exist_ok=True)
    if agent.vae is not None:
        agent.vae.wait()  # the plots read the decoders: no update may run meanwhile
    if hasattr(env, "plot_rollout"):
        env.plot_rollout(trace, os.path.join(folder, f"{it}_behaviour.png"))
    elif hasattr(env, "cell_id"):
        plot_grid_belief(agent, env, trace, os.path.join(folder, f"{it}_behaviour.png"))
    if "mean" in trace:
        plot_latents(trace, os.path.join(folder, f"{it}_latents.png"))
    pos = trace.get("pos")
    if "bonus" in trace and pos is not None and np.asarray(pos).reshape(len(trace["bonus"]), -1).shape[1] == 1:
        plot_bonus_over_x(trace, os.path.join(folder, f"{it}_bonus.png"))
    if agent.vae is not None and agent.vae.has_decoder:
        plot_vae_elbo_terms(agent, trace, os.path.join(folder, f"{it}_vae_loss.png"))


def plot_point_rollout(trace: dict, path: str, goal_radius=None, full_circle: bool = False) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    pos, ep = trace.get("pos"), trace["episode"]
    angle = np.linspace(0, 2 * np.pi if full_circle else np.pi, 100)
    ax.plot(np.cos(angle), np.sin(angle), "k--", lw=0.5)
    for k in np.unique(ep):
        p = pos[ep == k]
        ax.plot(p[:, 0], p[:, 1], label=f"episode {k + 1}")
    goal = trace["task"]
    ax.plot(goal[0], goal[1], "kx", ms=10)
    if goal_radius:
        ax.add_patch(plt.Circle(goal[:2], goal_radius, fill=False, color="k"))
    ax.set_aspect("equal")
    ax.legend(fontsize=7)
    _save(fig, path)


@torch.no_grad()
def _grid_beliefs(agent, trace) -> np.ndarray:
    """[T, cells]: exact belief (oracle) or the VAE's: normalised sigmoid of the multi-head
    reward decoder at the posterior mean."""
    vae = agent.vae
    if vae is not None and vae.reward_decoder is not None and vae.reward_decoder.multihead:
        logits = vae.reward_decoder(torch.as_tensor(trace["mean"], device=agent.device))
        p = torch.sigmoid(logits)
        return (p / p.sum(-1, keepdim=True)).cpu().numpy()
    if "belief" in trace:
        return trace["belief"]
    return None


def plot_grid_belief(agent, env, trace: dict, path: str) -> None:
    """One panel per step (rows: episodes): belief over goal cells (red), path so far
    (blue), goal (green star). Drawn as one mosaic image: fast even for 4 x 15 panels."""
    plt = _plt()
    n, beliefs = env.num_cells, _grid_beliefs(agent, trace)
    obs, ep = trace["obs"][:, :2], trace["episode"]
    R, H = int(ep.max()) + 1, int(np.sum(ep == 0))
    cell = n + 1  # panel size incl. a 1-cell gap
    mosaic = np.full((R * cell, H * cell), np.nan)
    fig, ax = plt.subplots(figsize=(H * 0.8, R * 0.8))
    goal = trace["task"][:2]
    for t in range(len(ep)):
        k, j = int(ep[t]), t - int(np.searchsorted(ep, ep[t]))
        if j >= H:
            continue
        y0, x0 = (R - 1 - k) * cell, j * cell
        if beliefs is not None:
            b = beliefs[t].reshape(n, n)
            mosaic[y0:y0 + n, x0:x0 + n] = b.T / max(b.max(), 1e-6)
        start = t - j
        xy = obs[start:t + 1]
        ax.plot(x0 + xy[:, 0], y0 + xy[:, 1], "b-", lw=1)
        ax.plot(x0 + goal[0], y0 + goal[1], "g*", ms=5)
    ax.imshow(mosaic, origin="lower", cmap="Reds", vmin=0, vmax=1, extent=(-0.5, H * cell - 0.5, -0.5, R * cell - 0.5))
    ax.set_xticks([(j + 0.4) * cell for j in range(H)], [str(j) for j in range(H)], fontsize=6)
    ax.set_yticks([(R - 1 - k + 0.4) * cell for k in range(R)], [f"ep {k + 1}" for k in range(R)], fontsize=7)
    ax.set_xlabel("step within episode")
    _save(fig, path)


def plot_bonus_over_x(trace: dict, path: str) -> None:
    """Exploration bonus paid at each x position (sparse HalfCheetahDir)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3))
    x = np.asarray(trace["pos"]).reshape(-1)
    sc = ax.scatter(x, trace["bonus"], c=np.arange(len(x)), s=6, cmap="viridis")
    fig.colorbar(sc, ax=ax, label="step")
    ax.set_xlabel("x position")
    ax.set_ylabel("bonus (before annealing)")
    _save(fig, path)


def plot_latents(trace: dict, path: str) -> None:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3))
    a.plot(trace["mean"])
    a.set_title("latent mean")
    b.plot(np.exp(trace["logvar"]))
    b.set_title("latent variance")
    for ax in (a, b):
        for t in np.nonzero(np.diff(trace["episode"]))[0]:
            ax.axvline(t + 1, color="k", ls=":", lw=0.7)
        ax.set_xlabel("env step")
    _save(fig, path)


@torch.no_grad()
def plot_vae_elbo_terms(agent, trace: dict, path: str) -> None:
    """Reconstruction error of the whole trajectory under each posterior t, and its KL."""
    vae, dev = agent.vae, agent.device
    if "next_obs" not in trace or len(trace["rewards"]) < 2:
        return
    T = len(trace["rewards"])
    f = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32, device=dev).reshape(T, 1, -1)  # noqa: E731
    actions = agent.encoder_action(torch.as_tensor(trace["raw_actions"], device=dev)).reshape(T, 1, -1)
    batch = dict(prev_obs=f(trace["obs"]), actions=actions.float(), rewards=f(trace["rewards"]),
                 next_obs=f(trace["next_obs"]))
    from types import SimpleNamespace

    b = SimpleNamespace(**batch, tasks=torch.as_tensor(trace["task"], device=dev, dtype=torch.float32)[None],
                        lengths=torch.tensor([T], device=dev))
    errs = vae.per_elbo_errors(b)
    plt = _plt()
    fig, axes = plt.subplots(1, len(errs), figsize=(4 * len(errs), 3), squeeze=False)
    for ax, (name, err) in zip(axes[0], errs.items()):
        ax.plot(err)
        ax.set_title(name)
        ax.set_xlabel("posterior t (0 = prior)")
    _save(fig, path)
