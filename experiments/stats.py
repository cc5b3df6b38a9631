"""Final-performance numbers of a set's runs: each run's final score, the best grid point per
arm (best final mean over seeds, as the hypernetwork papers pick a learning rate per method),
per-episode tables and aggregates with interval estimates (rliable's IQM / mean with
stratified-bootstrap 95% intervals and probability of improvement where rliable is installed;
a plain percentile bootstrap of the mean otherwise).
"""
from __future__ import annotations

import math
import os
import warnings
from collections import defaultdict

import numpy as np

from experiments.results import Run
from experiments.trial import read_json

LAST = 3  # a run's final score: the mean of its last 3 evaluations (as learning_comparison did)


def final_values(run: Run, prefix: str, last: int = LAST) -> list[float]:
    """Per BAMDP episode k: the mean of ``<prefix>_episode_k`` over the last evaluations."""
    rows = run.rows[-last:]
    return [float(np.mean([r[k] for r in rows if k in r])) for k in run.columns(prefix)] if rows else []


def run_score(run: Run, score: str = "return", last: int = LAST) -> float | None:
    """The run's final score: mean over episodes of ``score`` (return or success), last evaluations."""
    vals = final_values(run, score, last) or (final_values(run, "return", last) if score != "return" else [])
    return float(np.mean(vals)) if vals else None


def task_and_method(run: Run) -> tuple[str, str]:
    """(env name, method) of a run: the env the arm trains on, and its method (or exp_label)."""
    cfg = read_json(os.path.join(run.run_dir, "config.json")) or {}
    return cfg.get("env_name", run.trial.env_type), run.trial.method or cfg.get("exp_label") or run.trial.arm


def complete(run: Run) -> bool:
    """The run reached its frame budget (not stopped early, not still running)."""
    return bool(run.rows) and (run.status == "done" or run.frames >= run.trial.num_frames)


def finals(runs: list[Run]) -> list[Run]:
    """The runs whose final scores count: the complete ones, or (nothing complete yet) all."""
    done = [r for r in runs if complete(r)]
    return done or [r for r in runs if r.rows]


def by_variant(runs: list[Run]) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        if run.rows:
            out[run.trial.variant].append(run)
    return dict(out)


def best_points(runs: list[Run], score: str = "return") -> dict[str, dict]:
    """Per arm: every grid point's mean final score over seeds and the best one.
    {arm: {"best": variant, "point": {...}, "mean": float, "points": {variant: (mean, std, n)}}}"""
    arms: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    points: dict[str, dict] = {}
    per_arm: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        per_arm[run.trial.arm].append(run)
    for run in (r for group in per_arm.values() for r in finals(group)):  # early-stopped runs do not count
        val = run_score(run, score)
        if val is not None:
            arms[run.trial.arm][run.trial.variant].append(val)
            points[run.trial.variant] = run.trial.point
    out = {}
    for arm, variants in arms.items():
        stats = {v: (float(np.mean(x)), float(np.std(x)), len(x)) for v, x in variants.items()}
        best = max(stats, key=lambda v: stats[v][0])
        out[arm] = {"best": best, "point": points[best], "mean": stats[best][0], "points": stats}
    return out


def selected(runs: list[Run], score: str = "return", all_points: bool = False) -> list[Run]:
    """The runs of each arm's best grid point (all runs with ``all_points`` or without a grid)."""
    if all_points:
        return [r for r in runs if r.rows]
    best = {b["best"] for b in best_points(runs, score).values()}
    return [r for r in runs if r.rows and r.trial.variant in best]


def variant_rows(runs: list[Run], score: str = "return") -> list[dict]:
    """One summary per variant (its complete runs): seeds, frames, final return/success per
    episode (mean, std), score."""
    out = []
    for variant, group in by_variant(runs).items():
        group = finals(group)
        row = {"variant": variant, "seeds": len(group), "frames": max(r.frames for r in group)}
        for prefix in ("return", "success"):
            per_run = [final_values(r, prefix) for r in group]
            per_run = [p for p in per_run if p]
            if per_run:
                n = min(len(p) for p in per_run)
                arr = np.array([p[:n] for p in per_run])
                row[prefix] = list(zip(arr.mean(0).tolist(), arr.std(0).tolist()))
        scores = [s for s in (run_score(r, score) for r in group) if s is not None]
        row["score"] = (float(np.mean(scores)), float(np.std(scores))) if scores else (math.nan, math.nan)
        out.append(row)
    return out


def _bootstrap_mean(x: np.ndarray, reps: int, rng: np.random.Generator) -> tuple[float, float]:
    if len(x) < 2:
        return float(x.mean()), float(x.mean())
    means = rng.choice(x, size=(reps, len(x)), replace=True).mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _poi(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) + P(X = Y) / 2 over all pairs of runs."""
    gt = (x[:, None] > y[None, :]).mean()
    eq = (x[:, None] == y[None, :]).mean()
    return float(gt + 0.5 * eq)


def aggregates(runs: list[Run], score: str = "return", reps: int = 2000, seed: int = 0) -> dict:
    """Interval estimates of final scores per variant (within its env) and probability of
    improvement between the variants of one env; with several envs, per method across envs on
    scores min-max normalised per env.

    {"rliable": bool, "per_variant": {variant: {"env", "n", "mean", "mean_ci", "iqm", "iqm_ci"}},
     "poi": [(env, x, y, p, (lo, hi))], "per_method": {method: {...}} (several envs only)}"""
    try:
        from rliable import library as rly
        from rliable import metrics

        warnings.filterwarnings("ignore", message="random_state is deprecated", category=FutureWarning)
    except ImportError:
        rly = metrics = None
    rng = np.random.default_rng(seed)
    per_env: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    method_of: dict[str, str] = {}
    for variant, group in by_variant(runs).items():
        group = finals(group)
        vals = [s for s in (run_score(r, score) for r in group) if s is not None]
        if vals:
            env, method = task_and_method(group[0])
            per_env[env][variant] = np.array(vals, dtype=float)
            method_of[variant] = method + (f"[{group[0].trial.point_label}]" if group[0].trial.point else "")
    out: dict = {"rliable": rly is not None, "per_variant": {}, "poi": [], "per_method": {}}
    for env, variants in per_env.items():
        for variant, x in variants.items():
            entry = {"env": env, "n": len(x), "mean": float(x.mean())}
            if rly is not None:
                point, interval = rly.get_interval_estimates(
                    {variant: x[:, None]}, lambda s: np.array([metrics.aggregate_mean(s), metrics.aggregate_iqm(s)]),
                    reps=reps, random_state=np.random.RandomState(seed))
                entry.update(mean_ci=tuple(interval[variant][:, 0]), iqm=float(point[variant][1]),
                             iqm_ci=tuple(interval[variant][:, 1]))
            else:
                entry.update(mean_ci=_bootstrap_mean(x, reps, rng))
            out["per_variant"][variant] = entry
        names = list(variants)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                x, y = variants[a], variants[b]
                ci = (math.nan, math.nan)
                if rly is not None and len(x) > 1 and len(y) > 1:
                    key = f"{a},{b}"
                    _, interval = rly.get_interval_estimates({key: [x[:, None], y[:, None]]},
                                                             metrics.probability_of_improvement, reps=min(reps, 1000),
                                                             random_state=np.random.RandomState(seed))
                    ci = tuple(float(v) for v in np.ravel(interval[key]))
                out["poi"].append((env, a, b, _poi(x, y), ci))
    if len(per_env) > 1:
        out["per_method"] = _across_envs(per_env, method_of, rly, metrics, reps, seed)
    return out


def _across_envs(per_env, method_of, rly, metrics, reps, seed) -> dict:
    """Per method over envs (runs x envs matrices; scores min-max normalised per env)."""
    norm: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    for env, variants in per_env.items():
        allv = np.concatenate(list(variants.values()))
        lo, hi = allv.min(), allv.max()
        for variant, x in variants.items():
            norm[method_of[variant]][env] = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    envs = list(per_env)
    out = {}
    for method, scores in norm.items():
        if set(scores) != set(envs):
            continue  # not run on every env: no across-env aggregate
        n = min(len(v) for v in scores.values())
        mat = np.stack([scores[e][:n] for e in envs], axis=1)
        entry = {"n": n, "envs": len(envs), "mean": float(mat.mean())}
        if rly is not None:
            point, interval = rly.get_interval_estimates(
                {method: mat}, lambda s: np.array([metrics.aggregate_mean(s), metrics.aggregate_iqm(s)]),
                reps=reps, random_state=np.random.RandomState(seed))
            entry.update(mean_ci=tuple(interval[method][:, 0]), iqm=float(point[method][1]),
                         iqm_ci=tuple(interval[method][:, 1]))
        out[method] = entry
    return out
