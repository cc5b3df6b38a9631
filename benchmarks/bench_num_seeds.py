"""--num_seeds S vs one seed, side by side in one run: training frames/s of all seeds together.

    python benchmarks/bench_num_seeds.py [--env-type gridworld_varibad] [--seeds 8] [--pairs 3]
                                         [--frames-per-seed N] [--device cpu] [--separate] [--out results.json]

Each pair runs one seed and S seeds (order flipped every pair, so a load change on a shared box
favours neither), each a fresh subprocess timed by ``bench_training.time_training`` (evaluation
and checkpoints out of the timed window), with the same frames per seed. Prints medians and the
ratio (S seeds' frames/s over one seed's: the issue's target is >= 4 for S = 8 on gridworld).
``--separate`` adds, per pair, S seeds with ``--stack_seed_updates false`` (VAE and policy updates
one per seed: bit for bit single runs) and its ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from bench_throughput import run_child  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env-type", default="gridworld_varibad")
    ap.add_argument("--seeds", type=int, default=8, help="S (>= 2)")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--frames-per-seed", type=int, default=48_000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--separate", action="store_true", help="also time S seeds with --stack_seed_updates false")
    ap.add_argument("--out", help="write runs and summary as JSON")
    args = ap.parse_args(argv)
    if args.seeds < 2 or args.pairs < 1 or args.frames_per_seed < 1:
        ap.error("--seeds must be >= 2, --pairs and --frames-per-seed >= 1")
    return args


def summary(runs: list[dict], seeds: int) -> dict:
    """Medians and per-pair ratios; runs with ``"separate": True`` (--separate) are summarised
    apart, as ``fps_<S>_seeds_separate`` and ``ratio_separate``."""
    def key(r):
        return "separate" if r.get("separate") else r["num_seeds"]
    out = {"errors": [r.get("error") or r.get("na") for r in runs if "fps" not in r]}
    for variant, name in ((seeds, ""), ("separate", "_separate")):
        if variant == "separate" and not any(r.get("separate") for r in runs):
            continue
        fps = {v: [r["fps"] for r in runs if key(r) == v and "fps" in r] for v in (1, variant)}
        ratios = []
        for pair in sorted({r["pair"] for r in runs}):
            by = {key(r): r.get("fps") for r in runs if r["pair"] == pair}
            if by.get(1) and by.get(variant):
                ratios.append(by[variant] / by[1])
        med = {v: statistics.median(x) if x else None for v, x in fps.items()}
        out.update({"fps_one_seed": med[1], f"fps_{seeds}_seeds{name}": med[variant], f"ratio_per_pair{name}": ratios,
                    f"ratio{name}": statistics.median(ratios) if ratios else None})
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    runs = []
    for pair in range(args.pairs):
        order = [(1, False), (args.seeds, False)] + ([(args.seeds, True)] if args.separate else [])
        for s, separate in (order if pair % 2 == 0 else order[::-1]):
            opts = {"num_seeds": s, "device": args.device, **({"stack_seed_updates": False} if separate else {})}
            res = run_child(ROOT, args.env_type, args.frames_per_seed, opts, threads=args.threads)
            runs.append({"pair": pair, "num_seeds": s, **({"separate": True} if separate else {}), **res})
            label = f"num_seeds {s}" + (" (separate updates)" if separate else "")
            print(f"pair {pair}: {label}: " + (f"{res['fps']:,.0f} frames/s, peak RSS {res['rss_mb']:,.0f} MB"
                                              if "fps" in res else str(res)), flush=True)
    out = summary(runs, args.seeds)
    ratio = "n/a" if out["ratio"] is None else f"{out['ratio']:.2f}x (per pair: " + \
        ", ".join(f"{r:.2f}" for r in out["ratio_per_pair"]) + ")"
    print(f"\n{args.env_type} on {args.device}: one seed {out['fps_one_seed'] or 0:,.0f} frames/s; "
          f"{args.seeds} seeds {out[f'fps_{args.seeds}_seeds'] or 0:,.0f} frames/s (all seeds); ratio {ratio}")
    if out.get("ratio_separate") is not None:
        print(f"{args.seeds} seeds with separate updates (--stack_seed_updates false): "
              f"{out[f'fps_{args.seeds}_seeds_separate']:,.0f} frames/s; ratio {out['ratio_separate']:.2f}x (per pair: "
              + ", ".join(f"{r:.2f}" for r in out["ratio_per_pair_separate"]) + ")")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "runs": runs, "summary": out}, f, indent=1)
    return 0 if out["ratio"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())
