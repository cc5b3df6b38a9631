"""``python -m experiments.plot SET|RUN_DIR... [--root DIR] [--out DIR] [--all-points]``

Learning curves of a set, one curve per arm over its seeds (mean with a 95% bootstrap band,
seaborn), per env: the return (mean over the BAMDP's episodes) and the success rate; the
return of every episode k of the BAMDP; with a grid, the final score per grid value and arm
(the best value per arm is what the curves show, unless --all-points). PNGs plus a markdown
table (per-episode final returns / success, best grid point per arm, aggregates with interval
estimates) go to ``--out`` (default: the set's folder).
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field

from experiments import stats
from experiments.results import DEFAULT_ROOT, Run, collect, set_dir


@dataclass
class PlotResult:
    """What was drawn: files written and, per curve, how many seeds it averages."""

    files: list[str] = field(default_factory=list)
    curves: dict[str, int] = field(default_factory=dict)
    table: str = ""


def long_frame(runs: list[Run]):
    """One row per (run, evaluation): variant, env, seed, frames, return/success means and per episode."""
    import pandas as pd

    records = []
    for run in runs:
        env, _ = stats.task_and_method(run)
        for row in run.rows:
            rec = {"variant": run.trial.variant, "arm": run.trial.arm, "env": env, "seed": run.trial.seed,
                   "frames": row["frames"]}
            for prefix in ("return", "success"):
                keys = [k for k in run.columns(prefix) if k in row]
                if keys:
                    rec[f"{prefix}_mean"] = sum(row[k] for k in keys) / len(keys)
                    for k in keys:
                        rec[k] = row[k]
            records.append(rec)
    return pd.DataFrame.from_records(records)


def _label(df, variant: str) -> str:
    return f"{variant} ({df[df.variant == variant].seed.nunique()} seeds)"


def plot_curves(df, path: str) -> dict[str, int]:
    """Rows: envs; columns: return (and success if logged). Returns {variant: seeds} as drawn."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    envs = list(dict.fromkeys(df.env))
    metrics = [m for m in ("return_mean", "success_mean") if m in df and df[m].notna().any()]
    fig, axes = plt.subplots(len(envs), len(metrics), figsize=(6.5 * len(metrics), 3.8 * len(envs)), squeeze=False)
    drawn: dict[str, int] = {}
    for i, env in enumerate(envs):
        sub = df[df.env == env].copy()
        sub["curve"] = [_label(df, v) for v in sub.variant]
        for j, metric in enumerate(metrics):
            ax = axes[i][j]
            data = sub[sub[metric].notna()]
            if data.empty:
                ax.set_visible(False)
                continue
            sns.lineplot(data=data, x="frames", y=metric, hue="curve", errorbar=("ci", 95), n_boot=500, seed=0, ax=ax)
            ax.set_title(env, fontsize=9)
            ax.set_ylabel({"return_mean": "return (mean over episodes)", "success_mean": "success rate"}[metric])
            ax.legend(fontsize=7)
        for variant in dict.fromkeys(sub.variant):
            drawn[variant] = int(sub[sub.variant == variant].seed.nunique())
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return drawn


def plot_episodes(df, path: str) -> bool:
    """Return of each BAMDP episode k (columns) per env (rows)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    cols = sorted((c for c in df.columns if c.startswith("return_episode_")), key=lambda c: int(c.rsplit("_", 1)[1]))
    if len(cols) < 2:
        return False
    envs = list(dict.fromkeys(df.env))
    fig, axes = plt.subplots(len(envs), len(cols), figsize=(3.6 * len(cols), 3.2 * len(envs)), squeeze=False,
                             sharey="row")
    for i, env in enumerate(envs):
        sub = df[df.env == env]
        for j, col in enumerate(cols):
            data = sub[sub[col].notna()]
            sns.lineplot(data=data, x="frames", y=col, hue="variant", errorbar=("ci", 95), n_boot=300, seed=0,
                         ax=axes[i][j], legend=(j == len(cols) - 1))
            axes[i][j].set_title(f"{env}: episode {j + 1}", fontsize=8)
            axes[i][j].set_ylabel("return")
        if axes[i][-1].get_legend():
            axes[i][-1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def plot_grid(runs: list[Run], score: str, path: str) -> bool:
    """Final score against the (single) grid option's value, one line per arm; best marked."""
    import matplotlib.pyplot as plt
    import numpy as np

    keys = {k for r in runs for k in r.trial.point}
    if len(keys) != 1:
        return False
    key = keys.pop()
    best = stats.best_points(runs, score)
    fig, ax = plt.subplots(figsize=(7, 4))
    numeric = True
    for arm, info in best.items():
        pts = []
        for variant, (mean, std, n) in info["points"].items():
            value = next(r.trial.point[key] for r in runs if r.trial.variant == variant)
            numeric = numeric and isinstance(value, (int, float))
            pts.append((value, mean, std / max(np.sqrt(n), 1)))
        pts.sort(key=lambda p: p[0] if numeric else str(p[0]))
        xs = [p[0] if numeric else str(p[0]) for p in pts]
        line = ax.errorbar(xs, [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o", capsize=3, label=arm)
        bx = info["point"][key]
        ax.plot([bx if numeric else str(bx)], [info["mean"]], "*", ms=14, color=line[0].get_color())
    if numeric and all(v > 0 for r in runs for v in [r.trial.point[key]]):
        ax.set_xscale("log")
    ax.set_xlabel(key)
    ax.set_ylabel(f"final {score} (mean over seeds, +- s.e.)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def _pm(pair) -> str:
    return f"{pair[0]:.2f} +- {pair[1]:.2f}"


def markdown(name: str, runs: list[Run], chosen: list[Run], score: str) -> str:
    """The set's tables: per-variant finals, best grid point per arm, aggregates."""
    lines = [f"# {name}", "", f"Final = mean of the last {stats.LAST} evaluations of a run; mean +- std over seeds "
             "(runs that reached their budget; early-stopped runs only in the curves).", ""]
    rows = stats.variant_rows(chosen, score)
    n_ep = max((len(r.get("return", [])) for r in rows), default=0)
    has_succ = any("success" in r for r in rows)
    head = "| arm | seeds | frames | " + " | ".join(f"return ep{k + 1}" for k in range(n_ep))
    head += (" | " + " | ".join(f"success ep{k + 1}" for k in range(n_ep)) if has_succ else "") + " |"
    lines += [head, "|" + "---|" * (3 + n_ep * (2 if has_succ else 1))]
    for r in rows:
        cells = [r["variant"], str(r["seeds"]), f"{r['frames']:,.0f}"]
        cells += [_pm(p) for p in r.get("return", [])] + [""] * (n_ep - len(r.get("return", [])))
        if has_succ:
            cells += [_pm(p) for p in r.get("success", [])] + [""] * (n_ep - len(r.get("success", [])))
        lines.append("| " + " | ".join(cells) + " |")
    best = stats.best_points(runs, score)
    if any(r.trial.point for r in runs):
        lines += ["", f"Best grid point per arm (highest final {score}, mean over seeds):", "",
                  "| arm | best | final " + score + " | all points (mean +- std, seeds) |", "|---|---|---|---|"]
        for arm, info in best.items():
            others = "; ".join(f"{v[len(arm):]}: {m:.2f} +- {s:.2f} ({n})" for v, (m, s, n) in info["points"].items())
            label = ",".join(f"{k}={v}" for k, v in info["point"].items())
            lines.append(f"| {arm} | {label} | {info['mean']:.2f} | {others} |")
    agg = stats.aggregates(chosen, score)
    tool = "rliable, stratified bootstrap" if agg["rliable"] else "percentile bootstrap (rliable not installed)"
    lines += ["", f"Final {score} with 95% intervals ({tool}):", "",
              "| arm | env | runs | mean [95% CI] | IQM [95% CI] |", "|---|---|---|---|---|"]
    for variant, e in agg["per_variant"].items():
        iqm = f"{e['iqm']:.2f} [{e['iqm_ci'][0]:.2f}, {e['iqm_ci'][1]:.2f}]" if "iqm" in e else ""
        lines.append(f"| {variant} | {e['env']} | {e['n']} | {e['mean']:.2f} [{e['mean_ci'][0]:.2f}, "
                     f"{e['mean_ci'][1]:.2f}] | {iqm} |")
    if agg["poi"]:
        lines += ["", "Probability of improvement P(X > Y) of final " + score + ":", "",
                  "| env | X | Y | P(X > Y) [95% CI] |", "|---|---|---|---|"]
        for env, x, y, p, ci in agg["poi"]:
            interval = "" if ci[0] != ci[0] else f" [{ci[0]:.2f}, {ci[1]:.2f}]"
            lines.append(f"| {env} | {x} | {y} | {p:.2f}{interval} |")
    if agg["per_method"]:
        lines += ["", "Per method across envs (final scores min-max normalised per env):", "",
                  "| method | runs x envs | mean [95% CI] | IQM [95% CI] |", "|---|---|---|---|"]
        for method, e in agg["per_method"].items():
            ci = f" [{e['mean_ci'][0]:.2f}, {e['mean_ci'][1]:.2f}]" if "mean_ci" in e else ""
            iqm = f"{e['iqm']:.2f} [{e['iqm_ci'][0]:.2f}, {e['iqm_ci'][1]:.2f}]" if "iqm" in e else ""
            lines.append(f"| {method} | {e['n']} x {e['envs']} | {e['mean']:.2f}{ci} | {iqm} |")
    return "\n".join(lines) + "\n"


def plot(target: str | list[str], root: str = DEFAULT_ROOT, out: str | None = None,
         all_points: bool = False) -> PlotResult:
    """Figures and the markdown table of a set (or of run dirs)."""
    import matplotlib

    matplotlib.use("Agg")
    name, runs = collect(target, root)
    score = "return"
    if isinstance(target, str):
        from experiments.sets import load

        score = load(target, check_envs=False).score
    runs = [r for r in runs if r.rows]
    if not runs:
        raise FileNotFoundError(f"{name}: no results yet (no progress.csv rows)")
    out = out or (set_dir(root, name) if isinstance(target, str) else os.getcwd())
    os.makedirs(out, exist_ok=True)
    chosen = stats.selected(runs, score, all_points)
    df = long_frame(chosen)
    res = PlotResult()
    path = os.path.join(out, f"{name}_curves.png")
    res.curves = plot_curves(df, path)
    res.files.append(path)
    path = os.path.join(out, f"{name}_episodes.png")
    if plot_episodes(df, path):
        res.files.append(path)
    path = os.path.join(out, f"{name}_grid.png")
    if plot_grid(runs, score, path):
        res.files.append(path)
    res.table = markdown(name, runs, chosen, score)
    path = os.path.join(out, f"{name}.md")
    with open(path, "w") as f:
        f.write(res.table)
    res.files.append(path)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.plot", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("target", nargs="+", help="a set name / set file, or run dirs (or folders of run dirs)")
    ap.add_argument("--root", default=DEFAULT_ROOT, help="folder of the sets' results (default %(default)s)")
    ap.add_argument("--out", help="where the PNGs and the markdown go (default: the set's folder)")
    ap.add_argument("--all-points", action="store_true", help="a curve per grid point, not only each arm's best")
    args = ap.parse_args(argv)
    from experiments.sets import SetError

    target = args.target[0] if len(args.target) == 1 and not os.path.isdir(args.target[0]) else args.target
    try:
        res = plot(target, args.root, args.out, args.all_points)
    except (SetError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(res.table)
    print("\n".join(res.files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
