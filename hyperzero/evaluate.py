"""Zero-shot evaluation: each trained approximator is given only a held-out context and rolled
out deterministically; its return is compared with the expert trained on that context.

The expert's return per context comes from the dataset (its deterministic rollouts, seeded with
the dataset's ``rollout_seed``); the approximators are rolled out with the same seed and number
of episodes, so both start from the same initial states (a paired comparison, as HyperZero's
identically seeded expert/approximator environments).

Outputs: ``zero_shot.csv`` / ``zero_shot.json`` (one row per context: margin, length, expert
return, and per approximator its return and return / expert return) and a bar plot.
"""
from __future__ import annotations

import csv
import json
import os

import numpy as np
import torch

from hyperzero.experts import rollout

COLUMNS = {"rew": [0], "dyn": [1], "rew_dyn": [0, 1]}


def context_input(contexts: torch.Tensor, input_: str) -> torch.Tensor:
    """[K, 2] (margin, length) -> the model's input columns."""
    return contexts[:, COLUMNS[input_]]


def zero_shot(models: dict, contexts: np.ndarray, expert_returns: np.ndarray, input_: str, env_name: str,
              episodes: int, seed: int, episode_steps: int, env_kwargs: dict | None = None) -> list[dict]:
    """One row per context: {"margin", "length", "expert_return", "<name>_return", "<name>_ratio"}."""
    contexts = np.asarray(contexts, dtype=np.float64).reshape(-1, 2)
    rows = [{"margin": float(m), "length": float(L), "expert_return": float(r)}
            for (m, L), r in zip(contexts, expert_returns)]
    for name, model in models.items():
        model.eval()

        def policy(obs, ctx, model=model):
            return model.act(context_input(ctx, input_), obs)

        arrays = rollout(env_name, contexts, policy, episodes, seed, episode_steps, env_kwargs=env_kwargs)
        returns = arrays["return"].mean(1)
        for row, ret in zip(rows, returns):
            row[f"{name}_return"] = float(ret)
            row[f"{name}_ratio"] = float(ret / row["expert_return"]) if row["expert_return"] != 0 else float("nan")
    return rows


def summary(rows: list[dict], names: list[str]) -> dict:
    """Mean return and mean ratio to the expert per approximator (over contexts)."""
    out = {"expert_return_mean": float(np.mean([r["expert_return"] for r in rows]))}
    for n in names:
        out[f"{n}_return_mean"] = float(np.mean([r[f"{n}_return"] for r in rows]))
        out[f"{n}_ratio_mean"] = float(np.nanmean([r[f"{n}_ratio"] for r in rows]))
    return out


def write_results(rows: list[dict], folder: str, names: list[str]) -> None:
    os.makedirs(folder, exist_ok=True)
    cols = list(rows[0])
    with open(os.path.join(folder, "zero_shot.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(folder, "zero_shot.json"), "w") as f:
        json.dump({"rows": rows, "summary": summary(rows, names)}, f, indent=1)


def format_table(rows: list[dict], names: list[str]) -> str:
    head = f"{'margin':>8} {'length':>7} {'expert':>9} " + " ".join(f"{n[:20]:>20}" for n in names)
    lines = [head]
    for r in rows:
        cells = " ".join(f"{r[f'{n}_return']:9.1f} ({r[f'{n}_ratio']:5.2f})" for n in names)
        lines.append(f"{r['margin']:8.3g} {r['length']:7.3g} {r['expert_return']:9.1f} {cells}")
    return "\n".join(lines)


def plot_results(rows: list[dict], names: list[str], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"m={r['margin']:g}\nL={r['length']:g}" for r in rows]
    x = np.arange(len(rows))
    width = 0.8 / (len(names) + 1)
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(rows) * (len(names) + 1)), 4.5))
    ax.bar(x, [r["expert_return"] for r in rows], width, label="expert (trained on the context)", color="k")
    for j, n in enumerate(names):
        ax.bar(x + (j + 1) * width, [r[f"{n}_return"] for r in rows], width, label=n)
    ax.set_xticks(x + 0.4 - width / 2, labels)
    ax.set_ylabel("episode return")
    ax.set_title("zero-shot return on held-out contexts")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, frameon=False)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
