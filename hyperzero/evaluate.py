"""Zero-shot evaluation: each trained approximator is given only a held-out context and rolled
out deterministically; its return is compared with the expert trained on that context.

The expert's return per context comes from the dataset (its deterministic rollouts, seeded with
the dataset's ``rollout_seed``); the approximators are rolled out with the same seed and number
of episodes, so both start from the same initial states (a paired comparison, as HyperZero's
identically seeded expert/approximator environments).

Outputs: ``zero_shot.csv`` / ``zero_shot.json`` (one row per context: margin, length, expert
return, and per approximator its return and return / expert return), ``report.md`` (the experts'
returns per context, and per approximator the mean zero-shot return and ratio to the expert) and a
bar plot. With several regressor seeds (``groups``: approximator -> {seed: column label}) the
report, the plot and ``zero_shot.json``'s "seeds" entry give the mean and spread over the seeds:
a seed's score is its mean over the held-out contexts, and the spread is the sample std (and
min / max) of those per-seed scores.
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


def summary(rows: list[dict], names: list[str], groups: dict | None = None) -> dict:
    """Mean return and mean ratio to the expert per approximator (over contexts); with ``groups``
    also per approximator the mean over its seeds and the std over seeds (``<name>_return_seed_std``)."""
    out = {"expert_return_mean": float(np.mean([r["expert_return"] for r in rows]))}
    for n in names:
        out[f"{n}_return_mean"] = float(np.mean([r[f"{n}_return"] for r in rows]))
        out[f"{n}_ratio_mean"] = float(np.nanmean([r[f"{n}_ratio"] for r in rows]))
    for name, agg in seed_summary(rows, groups or {}).items():
        for key in ("return", "ratio"):
            out[f"{name}_{key}_mean"] = agg[f"{key}_mean"]
            out[f"{name}_{key}_seed_std"] = agg[f"{key}_std"]
    return out


def _spread(values: list[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
            "min": float(np.min(v)), "max": float(np.max(v))}


def seed_summary(rows: list[dict], groups: dict) -> dict:
    """Per approximator (``groups``: name -> {seed: column label}): each seed's mean return and mean
    ratio over the contexts, their mean / sample std / min / max over seeds, and per context the
    mean and std over seeds."""
    out = {}
    for name, by_seed in groups.items():
        labels = list(by_seed.values())
        per_seed = {str(s): {"return": float(np.mean([r[f"{lb}_return"] for r in rows])),
                             "ratio": float(np.nanmean([r[f"{lb}_ratio"] for r in rows]))}
                    for s, lb in by_seed.items()}
        ret, rat = _spread([v["return"] for v in per_seed.values()]), _spread([v["ratio"] for v in per_seed.values()])
        per_context = [{"margin": r["margin"], "length": r["length"], "expert_return": r["expert_return"],
                        **{f"return_{k}": v for k, v in _spread([r[f"{lb}_return"] for lb in labels]).items()}}
                       for r in rows]
        out[name] = {"seeds": len(labels), "per_seed": per_seed, **{f"return_{k}": v for k, v in ret.items()},
                     **{f"ratio_{k}": v for k, v in rat.items()}, "per_context": per_context}
    return out


def format_seed_table(agg: dict) -> str:
    """Markdown: one line per approximator, mean +- std over seeds [min, max]."""
    lines = ["| approximator | seeds | zero-shot return: mean ± std over seeds [min, max] | ratio to the expert |",
             "|---|---:|---:|---:|"]
    for name, a in agg.items():
        lines.append(f"| {name} | {a['seeds']} | {a['return_mean']:.1f} ± {a['return_std']:.1f} "
                     f"[{a['return_min']:.1f}, {a['return_max']:.1f}] | {a['ratio_mean']:.3f} ± {a['ratio_std']:.3f} |")
    return "\n".join(lines)


def write_report(path: str, rows: list[dict], meta: dict, split: dict, groups: dict | None = None,
                 names: list[str] | None = None) -> None:
    """Markdown: the experts' returns on every context of the dataset (train or held out), the
    zero-shot summary per approximator and the held-out contexts one by one."""
    groups = groups or {n: {None: n} for n in (names or [k[:-len("_return")] for k in rows[0]
                                                         if k.endswith("_return") and k != "expert_return"])}
    test = {tuple(k) for k in split["test"]}
    from hyperzero.dataset import context_key

    lines = ["# HyperZero zero-shot evaluation", "",
             f"Experts: {len(meta['contexts'])} contexts of {meta['env_name']}, return = mean over the "
             f"{meta['contexts'][0]['episodes']} deterministic dataset episodes of {meta.get('episode_steps', '?')} steps. "
             f"Held out (never seen by the regressors): {len(test)} context(s), split seed {split['seed']}.", "",
             "## Experts", "", "| margin | length | expert return | split |", "|---:|---:|---:|---|"]
    for c in meta["contexts"]:
        held = context_key(c["margin"], c["length"], split["input"]) in test
        lines.append(f"| {c['margin']:g} | {c['length']:g} | {c['expert_return']:.1f} | {'held out' if held else 'train'} |")
    agg = seed_summary(rows, groups)
    expert = float(np.mean([r["expert_return"] for r in rows]))
    lines += ["", "## Zero-shot on the held-out contexts", "",
              f"Expert mean return on these contexts: {expert:.1f}. A seed's score is its mean over the held-out "
              "contexts; ratio = approximator return / expert return, averaged over the contexts.", "",
              format_seed_table(agg), "", "## Per held-out context (mean ± std over seeds)", "",
              "| margin | length | expert | " + " | ".join(agg) + " |", "|---:|---:|---:|" + "---:|" * len(agg)]
    for i, r in enumerate(rows):
        cells = " | ".join(f"{a['per_context'][i]['return_mean']:.1f} ± {a['per_context'][i]['return_std']:.1f}"
                           for a in agg.values())
        lines.append(f"| {r['margin']:g} | {r['length']:g} | {r['expert_return']:.1f} | {cells} |")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def write_results(rows: list[dict], folder: str, names: list[str], groups: dict | None = None) -> None:
    os.makedirs(folder, exist_ok=True)
    cols = list(rows[0])
    with open(os.path.join(folder, "zero_shot.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(folder, "zero_shot.json"), "w") as f:
        out = {"rows": rows, "summary": summary(rows, names, groups)}
        if groups:
            out["seeds"] = seed_summary(rows, groups)
        json.dump(out, f, indent=1)


def format_table(rows: list[dict], names: list[str]) -> str:
    head = f"{'margin':>8} {'length':>7} {'expert':>9} " + " ".join(f"{n[:20]:>20}" for n in names)
    lines = [head]
    for r in rows:
        cells = " ".join(f"{r[f'{n}_return']:9.1f} ({r[f'{n}_ratio']:5.2f})" for n in names)
        lines.append(f"{r['margin']:8.3g} {r['length']:7.3g} {r['expert_return']:9.1f} {cells}")
    return "\n".join(lines)


def plot_results(rows: list[dict], names: list[str], path: str, groups: dict | None = None) -> None:
    """Bars per held-out context: the expert and every approximator; with ``groups`` one bar per
    approximator (mean over seeds, error bar = min..max over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"m={r['margin']:g}\nL={r['length']:g}" for r in rows]
    x = np.arange(len(rows))
    agg = seed_summary(rows, groups) if groups else None
    bars = list(agg) if agg else names
    width = 0.8 / (len(bars) + 1)
    fig, ax = plt.subplots(figsize=(min(12, max(6, 0.5 * len(rows) * (len(bars) + 1))), 4.5))
    ax.bar(x, [r["expert_return"] for r in rows], width, label="expert (trained on the context)", color="k")
    for j, n in enumerate(bars):
        if agg:
            pc = agg[n]["per_context"]
            mean = np.array([c["return_mean"] for c in pc])
            err = np.array([[m - c["return_min"] for m, c in zip(mean, pc)], [c["return_max"] - m for m, c in zip(mean, pc)]])
            ax.bar(x + (j + 1) * width, mean, width, yerr=err, capsize=2, label=f"{n} ({agg[n]['seeds']} seeds)")
        else:
            ax.bar(x + (j + 1) * width, [r[f"{n}_return"] for r in rows], width, label=n)
    ax.set_xticks(x + 0.4 - width / 2, labels)
    ax.set_ylabel("episode return")
    ax.set_title("zero-shot return on held-out contexts" + ("\n(bar: mean over seeds, whisker: min..max)" if agg else ""),
                 fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, frameon=False)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
