"""Ours vs a base revision, side by side in one run: end-to-end training frames/s and peak RSS
for every env-type of the README's speed table.

    python benchmarks/bench_throughput.py --base <git rev> [--env-types ...] [--frames N] [--pairs K]
                                          [--threads 1] [--out results.json|results.csv|PREFIX]

The base revision is checked out in a temporary git worktree (removed at the end); "ours" is
this working tree as it is (uncommitted changes included). For each env-type, K pairs of
(base, ours) runs alternate (the order flips every pair, so a load change on a shared box does
not favour one side); every run is a fresh subprocess started in its own tree, which times
training exactly as ``benchmarks/bench_training.py``'s ``time_training`` of that tree does
(evaluation/plots/checkpoints pushed out of the timed window, precollect kept) and reports its
own peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss`` at the end of the child). An env-type,
method or option the base tree does not have is reported as "n/a" (except ``num_threads``, which
is only passed to pin the thread count: a tree without it runs without it). As in bench_training's
main row, the VAE update overlap is the schema default (on); ``--device`` is not set unless given,
so the presets' ``auto`` trains on a GPU where one is visible.

Frames per run: ``--frames`` for every env-type, else ``DEFAULT_FRAMES`` (several updates each,
up to ~2 minutes per run on the 2-core box, the T-maze at XL the longest; the whole default table
with --pairs 3 is roughly half an hour there). A run always trains at least one iteration (num_processes x policy_num_steps
frames): tiny --frames only check that the script works, their frames/s mean nothing.

An env-type may name a method: ``tmaze_ln_varibad:splagger`` is ``--env-type tmaze_ln_varibad
--method splagger``. There is no separate "XL" option: the memory presets (``_memory_varibad``)
*are* the papers' XL size (policy [256, 128], GRU 256, T-LN corridor 100, 150 steps/episode,
600-step rollouts), which is what the README's T-maze section calls "the presets' XL size".

For ``cheetah_dir_varibad`` (``ENV_ALONE``) each child also times batched env stepping alone
(16 copies, BAMDP wrapper, random actions; ``bench_training.time_env``) after training, and the
table gets a row "training / env stepping alone" (target: ours >= 0.5).

The "15x target" column: ``ORIGINAL_FPS`` are the frames/s of the ORIGINAL reference code
(VariBAD / HyperX) quoted in issue #15, measured side by side with ours on this machine class
(2-core shared CPU box); the target is 15x those. They are constants, not measured here.

Prints one markdown table; ``--out`` also writes it as JSON (rows + every run) and/or CSV.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DEFAULT_ENV_TYPES = ["gridworld_varibad", "pointrobot_varibad", "treasure_hunt_hyperx", "room_hyperx",
                     "cheetah_dir_varibad", "tmaze_ln_varibad:splagger"]
# frames/s of the ORIGINAL reference code, from issue #15 (measured side by side on this machine class)
ORIGINAL_FPS: dict[str, tuple[float, float]] = {
    "gridworld_varibad": (340.0, 600.0),
    "pointrobot_varibad": (250.0, 250.0),
    "treasure_hunt_hyperx": (1100.0, 1100.0),
    "room_hyperx": (1600.0, 1600.0),
}
TARGET_FACTOR = 15
# frames per run when --frames is not given: >= a few updates each, ~1-2 min per run on the 2-core box
DEFAULT_FRAMES = {"gridworld_varibad": 100_000, "pointrobot_varibad": 32_000, "treasure_hunt_hyperx": 48_000,
                  "room_hyperx": 48_000, "cheetah_dir_varibad": 51_200, "tmaze_ln_varibad": 19_200}
ENV_ALONE = {"cheetah_dir_varibad"}  # also time env stepping alone; target training >= 0.5 of it
ENV_ALONE_TARGET = 0.5

# Runs inside the tree being measured (cwd = that tree). Imports nothing from the tree that
# launched it. Last stdout line: "RESULT {json}".
CHILD = r'''
import importlib.util, json, os, resource, sys, traceback
spec = json.loads(sys.argv[1])
tree = os.getcwd()
sys.path.insert(0, tree)

def done(**kw):
    print("RESULT " + json.dumps(kw), flush=True)
    sys.exit(0)

path = os.path.join(tree, "benchmarks", "bench_training.py")
if not os.path.exists(path):
    done(na="no benchmarks/bench_training.py")
s = importlib.util.spec_from_file_location("_bench_training_of_tree", path)
bt = importlib.util.module_from_spec(s)
s.loader.exec_module(bt)
if not hasattr(bt, "time_training"):
    done(na="bench_training.py has no time_training")
import torch
torch.set_num_threads(spec["threads"])
from config.loader import resolve
env_type, extra = spec["env_type"], dict(spec["extra"])
while True:
    try:
        over = {k: [str(v)] for k, v in extra.items()}
        over["num_frames"] = [str(spec["frames"])]
        cfg = resolve(env_type, over)
        break
    except Exception as e:  # unknown env-type / method / option in this tree
        msg = f"{type(e).__name__}: {e}"
        dropped = [k for k in spec.get("optional", []) if k in extra and k in msg]
        if not dropped:
            done(na=msg.splitlines()[0][:200])
        for k in dropped:  # an option the benchmark only adds for speed (num_threads): run without it
            del extra[k]
cuda = "cuda" in str(extra.get("device", ""))
try:
    res = bt.time_training(env_type, spec["frames"], extra)
except Exception:
    traceback.print_exc()
    done(error=traceback.format_exc().strip().splitlines()[-1][:300])
out = {"fps": res["fps"], "frames": res["frames"], "seconds": res["seconds"],
       "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
       "device": str(cfg.device)}
if cuda:
    out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
if spec.get("env_steps") and hasattr(bt, "time_env"):
    try:
        out["env_fps"] = bt.time_env(env_type, spec["env_steps"])
    except Exception as e:
        out["env_error"] = f"{type(e).__name__}: {e}"[:200]
done(**out)
'''


def parse_env_type(spec: str) -> tuple[str, dict]:
    """'tmaze_ln_varibad:splagger' -> ('tmaze_ln_varibad', {'method': 'splagger'})."""
    env_type, _, method = spec.partition(":")
    if not env_type:
        raise ValueError(f"bad env-type {spec!r}")
    return env_type, ({"method": method} if method else {})


def label(spec: str) -> str:
    env_type, extra = parse_env_type(spec)
    if "method" in extra:
        return f"{env_type} --method {extra['method']}" + (" (XL)" if env_type.startswith("tmaze") else "")
    return env_type


def run_child(tree: str, env_type: str, frames: int, extra: dict, threads: int = 1, env_steps: int = 0,
              timeout: float = 1800.0, env: dict | None = None, optional=("num_threads",)) -> dict:
    """One timed training run in a fresh interpreter inside ``tree``. -> the child's result dict:
    fps/frames/seconds/rss_mb[/env_fps/cuda_peak_mb], or {'na': why} or {'error': why}. Options in
    ``optional`` that the tree does not know are dropped (the run goes on without them); any other
    unknown env-type/method/option makes the result n/a."""
    spec = {"env_type": env_type, "frames": frames, "extra": {"num_threads": threads, **extra},
            "threads": threads, "env_steps": env_steps, "optional": list(optional)}
    child_env = {**os.environ, "OMP_NUM_THREADS": str(threads), **(env or {})}
    child_env.pop("PYTHONPATH", None)  # nothing from the launching tree
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], cwd=tree, env=child_env,
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("RESULT "):
            out = json.loads(line[len("RESULT "):])
            out["wall"] = wall
            return out
    tail = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
    return {"error": f"exit {p.returncode}: {tail[:300]}", "wall": wall}


def _median(xs):
    return statistics.median(xs) if xs else None


def summarize(runs: list[dict]) -> list[dict]:
    """Runs ({'env_type', 'side': 'base'|'ours', 'pair', + child result}) -> one row per env-type
    (and an extra 'env stepping alone' row where env_fps was measured), in first-seen order."""
    rows = []
    for spec in dict.fromkeys(r["env_type"] for r in runs):
        rs = [r for r in runs if r["env_type"] == spec]
        side = {s: [r for r in rs if r["side"] == s] for s in ("base", "ours")}
        fps = {s: [r["fps"] for r in side[s] if "fps" in r] for s in side}
        by_pair = {s: {r["pair"]: r["fps"] for r in side[s] if "fps" in r} for s in side}
        ratios = [by_pair["ours"][k] / by_pair["base"][k] for k in by_pair["ours"] if k in by_pair["base"]]
        row = {"env_type": spec, "label": label(spec),
               "base_fps": _median(fps["base"]), "ours_fps": _median(fps["ours"]),
               "ratio": _median(ratios), "ratio_min": min(ratios, default=None), "ratio_max": max(ratios, default=None),
               "pairs": len(ratios), "frames": _median([r["frames"] for r in rs if "frames" in r]),
               "base_rss_mb": max((r["rss_mb"] for r in side["base"] if "rss_mb" in r), default=None),
               "ours_rss_mb": max((r["rss_mb"] for r in side["ours"] if "rss_mb" in r), default=None),
               "base_note": _note(side["base"]), "ours_note": _note(side["ours"])}
        env_type = parse_env_type(spec)[0]
        row.update(target_cells(env_type, row["ours_fps"]))
        rows.append(row)
        env_fps = {s: [r["env_fps"] for r in side[s] if "env_fps" in r] for s in side}
        if env_fps["ours"] or env_fps["base"]:
            eratios = [r["fps"] / r["env_fps"] for r in side["ours"] if "env_fps" in r and "fps" in r]
            ebase, eours = _median(env_fps["base"]), _median(env_fps["ours"])
            frac = _median(eratios)
            rows.append({"env_type": spec + " (env alone)",
                         "label": f"{label(spec)}: env stepping alone (16 copies, BAMDP), env steps/s",
                         "base_fps": ebase, "ours_fps": eours,
                         "ratio": eours / ebase if ebase and eours else None, "ratio_min": None, "ratio_max": None,
                         "pairs": 0, "frames": None, "base_rss_mb": None, "ours_rss_mb": None,
                         "base_note": "" if ebase else "n/a", "ours_note": "" if eours else "n/a",
                         "target": f"ours training / env alone >= {ENV_ALONE_TARGET}",
                         "target_met": None if frac is None else frac >= ENV_ALONE_TARGET,
                         "vs_original": None, "train_over_env": frac})
    return rows


def _note(rs: list[dict]) -> str:
    if any("fps" in r for r in rs):
        return ""
    for r in rs:
        if "na" in r:
            return "n/a"
    for r in rs:
        if "error" in r:
            return "error: " + r["error"]
    return "n/a"


def target_cells(env_type: str, ours_fps: float | None) -> dict:
    """The 15x-target cells: target text, whether ours meets it, ours / original (midpoint)."""
    if env_type not in ORIGINAL_FPS:
        return {"target": None, "target_met": None, "vs_original": None}
    lo, hi = ORIGINAL_FPS[env_type]
    text = f"{TARGET_FACTOR * lo:,.0f}" if lo == hi else f"{TARGET_FACTOR * lo:,.0f}-{TARGET_FACTOR * hi:,.0f}"
    if ours_fps is None:
        return {"target": text, "target_met": None, "vs_original": None}
    met = "yes" if ours_fps >= TARGET_FACTOR * hi else ("low end only" if ours_fps >= TARGET_FACTOR * lo else "no")
    return {"target": text, "target_met": met, "vs_original": ours_fps / ((lo + hi) / 2)}


def _f(x, fmt="{:,.0f}", missing="n/a"):
    return missing if x is None else fmt.format(x)


def format_table(rows: list[dict]) -> str:
    head = ("| env-type | base frames/s (median) | ours frames/s (median) | ours/base (median of pairs) [min-max] "
            "| peak RSS base/ours (MB) | 15x target (original x15) | met | ours/original |")
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        base = r["base_note"] or _f(r["base_fps"])
        ours = r["ours_note"] or _f(r["ours_fps"])
        if r["ratio"] is None:
            ratio = "n/a"
        elif r["ratio_min"] is None:
            ratio = f"{r['ratio']:.2f}"
        else:
            ratio = f"{r['ratio']:.2f} [{r['ratio_min']:.2f}-{r['ratio_max']:.2f}]"
        rss = "-" if r["base_rss_mb"] is None and r["ours_rss_mb"] is None else \
            f"{_f(r['base_rss_mb'])} / {_f(r['ours_rss_mb'])}"
        if "train_over_env" in r:
            target = r["target"]
            met = "n/a" if r["target_met"] is None else ("yes" if r["target_met"] else "no")
            vs = "n/a" if r["train_over_env"] is None else f"training/env = {r['train_over_env']:.2f}"
        else:
            target = r["target"] or "-"
            met = r["target_met"] or ("-" if r["target"] is None else "n/a")
            vs = "-" if r["vs_original"] is None else f"{r['vs_original']:.1f}x"
        lines.append(f"| {r['label']} | {base} | {ours} | {ratio} | {rss} | {target} | {met} | {vs} |")
    return "\n".join(lines)


CSV_FIELDS = ["env_type", "label", "base_fps", "ours_fps", "ratio", "ratio_min", "ratio_max", "pairs", "frames",
              "base_rss_mb", "ours_rss_mb", "base_note", "ours_note", "target", "target_met", "vs_original",
              "train_over_env"]


def write_out(path: str, rows: list[dict], runs: list[dict], meta: dict) -> list[str]:
    """.json -> JSON (meta, rows, runs); .csv -> CSV rows; anything else -> PATH.json and PATH.csv."""
    if path.endswith(".json"):
        paths = [path]
    elif path.endswith(".csv"):
        paths = [path]
    else:
        paths = [path + ".json", path + ".csv"]
    for p in paths:
        os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)
        if p.endswith(".json"):
            with open(p, "w") as f:
                json.dump({"meta": meta, "rows": rows, "runs": runs}, f, indent=1)
        else:
            with open(p, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
                w.writeheader()
                w.writerows(rows)
    return paths


def _git(*args, cwd=ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="git revision to compare against (e.g. the commit before the issue)")
    ap.add_argument("--env-types", nargs="+", default=DEFAULT_ENV_TYPES,
                    help="env-types; ENV:METHOD for --method METHOD (default: the README table's)")
    ap.add_argument("--frames", type=int, default=None,
                    help="training frames per run, every env-type (default: DEFAULT_FRAMES per env-type, else 100000)")
    ap.add_argument("--pairs", type=int, default=3, help="(base, ours) pairs per env-type (default 3)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads / num_threads in each run (default 1)")
    ap.add_argument("--env-steps", type=int, default=2000,
                    help=f"env-stepping-alone steps for {sorted(ENV_ALONE)} (0: skip; default 2000)")
    ap.add_argument("--device", default=None, help="--device for the runs (default: the presets', as bench_training)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per run before it counts as an error")
    ap.add_argument("--out", default=None, help="write the table as .json / .csv (other names: both, as PREFIX.*)")
    args = ap.parse_args(argv)
    for name in ("frames", "pairs", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.env_steps < 0:
        ap.error("--env-steps must be >= 0")
    for spec in args.env_types:
        try:
            parse_env_type(spec)
        except ValueError as e:
            ap.error(str(e))
    try:
        args.base_sha = _git("rev-parse", "--verify", "--quiet", args.base + "^{commit}")
    except subprocess.CalledProcessError:
        ap.error(f"--base {args.base!r} is not a commit of this repository")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    head = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    tmp = tempfile.mkdtemp(prefix="bench_throughput_")
    base_tree = os.path.join(tmp, "base")
    runs: list[dict] = []
    load0 = os.getloadavg()[0]
    try:
        _git("worktree", "add", "--detach", "--force", base_tree, args.base_sha)
        trees = {"base": base_tree, "ours": ROOT}
        print(f"base {args.base} = {args.base_sha[:10]} (worktree {base_tree}); ours = {head}"
              f"{' + uncommitted changes' if dirty else ''}; {args.frames or 'DEFAULT_FRAMES'} frames x {args.pairs} pairs, "
              f"{args.threads} thread(s), {os.cpu_count()} cores, load {load0:.2f}", flush=True)
        extra_dev = {"device": args.device} if args.device else {}
        for spec in args.env_types:
            env_type, extra = parse_env_type(spec)
            env_steps = args.env_steps if env_type in ENV_ALONE else 0
            frames = args.frames or DEFAULT_FRAMES.get(env_type, 100_000)
            for k in range(args.pairs):
                for side in (("base", "ours") if k % 2 == 0 else ("ours", "base")):
                    r = run_child(trees[side], env_type, frames, {**extra, **extra_dev}, args.threads,
                                  env_steps, args.timeout)
                    runs.append({"env_type": spec, "side": side, "pair": k, "frames_asked": frames, **r})
                    what = (f"{r['fps']:,.0f} frames/s, {r['rss_mb']:,.0f} MB" if "fps" in r
                            else r.get("na") and f"n/a ({r['na']})" or r.get("error"))
                    print(f"  {label(spec)} pair {k + 1}/{args.pairs} {side}: {what}", flush=True)
                if all("na" in r for r in runs if r["env_type"] == spec and r["side"] == "base") and \
                        all("na" in r for r in runs if r["env_type"] == spec and r["side"] == "ours"):
                    break  # neither tree has it: no point repeating
    finally:
        removed = subprocess.run(["git", "worktree", "remove", "--force", base_tree], cwd=ROOT, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
        if removed.returncode != 0:  # e.g. the add failed half-way: drop the stale entry
            subprocess.run(["git", "worktree", "prune"], cwd=ROOT, capture_output=True)
    rows = summarize(runs)
    table = format_table(rows)
    load1 = os.getloadavg()[0]
    print()
    print(table)
    print(f"\n(load avg {load0:.2f} -> {load1:.2f}; ratio = median over pairs of ours/base frames/s; "
          f"15x target = {TARGET_FACTOR} x the original code's frames/s quoted in issue #15)")
    if args.out:
        meta = {"base": args.base, "base_sha": args.base_sha, "ours": head, "dirty": dirty, "frames": args.frames,
                "pairs": args.pairs, "threads": args.threads, "device": args.device, "cores": os.cpu_count(),
                "load": [load0, load1], "table": table}
        print("wrote " + ", ".join(write_out(args.out, rows, runs, meta)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
