"""``python -m experiments.status SET [--root DIR]``: every trial of a set with its state
(pending / running / interrupted / done / stopped / failed), frames, starts and last metrics."""
from __future__ import annotations

import argparse
import os
import socket
import sys
from collections import Counter

from experiments.results import DEFAULT_ROOT, Run, collect
from experiments.trial import OUTCOME_FILE, read_json


def live_status(run: Run) -> str:
    """The recorded status, with 'running' checked: a trial whose process is gone (on this
    host) was interrupted (``--resume`` continues it)."""
    if run.status != "running":
        return run.status
    start = (run.info.get("starts") or [{}])[-1]
    if start.get("host") == socket.gethostname() and start.get("pid"):
        try:
            os.kill(int(start["pid"]), 0)
        except ProcessLookupError:
            return "interrupted"
        except PermissionError:
            pass
    return "running"


def table(runs: list[Run]) -> str:
    lines = ["| trial | status | frames | starts | last return (per episode) | last success | note |",
             "|---|---|---|---|---|---|---|"]
    for run in runs:
        last = run.info.get("last") or (run.rows[-1] if run.rows else {})
        ret = " ".join(f"{last[k]:.2f}" for k in sorted((k for k in last if k.startswith("return_episode_")),
                                                        key=lambda k: int(k.rsplit("_", 1)[1])))
        succ = last.get("success_mean")
        if succ is None:
            vals = [v for k, v in last.items() if k.startswith("success_episode_")]
            succ = sum(vals) / len(vals) if vals else None
        note = ""
        if run.status == "failed":
            err = (read_json(os.path.join(run.run_dir, OUTCOME_FILE)) or {}).get("error", "")
            note = (err.strip().splitlines() or [""])[-1][:100]
        frames = last.get("frames", run.frames)
        lines.append(f"| {run.trial.trial_id} | {live_status(run)} | {frames:,.0f} / {run.trial.num_frames:,} | "
                     f"{len(run.info.get('starts', []))} | {ret} | {'' if succ is None else f'{succ:.2f}'} | {note} |")
    return "\n".join(lines)


def summary(runs: list[Run]) -> str:
    counts = Counter(live_status(r) for r in runs)
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + f" (of {len(runs)} trials)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.status", description=__doc__)
    ap.add_argument("target", nargs="+", help="a set name / set file, or run dirs")
    ap.add_argument("--root", default=DEFAULT_ROOT, help="folder of the sets' results (default %(default)s)")
    args = ap.parse_args(argv)
    from experiments.sets import SetError

    try:
        name, runs = collect(args.target[0] if len(args.target) == 1 and not os.path.isdir(args.target[0])
                             else args.target, args.root)
    except (SetError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{name}: {summary(runs)}\n")
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
