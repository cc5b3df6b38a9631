"""Run an experiment set (or show its status / plot it).

    python -m experiments.run SET [--address ADDR] [--resume] [--max-concurrent K]
                                  [--cpus-per-trial C] [--gpus-per-trial G] [--retries K]
                                  [--asha] [--root DIR] [--no-ray]
    python -m experiments.run status SET [--root DIR]
    python -m experiments.run plot SET|RUN_DIR... [--root DIR] [--out DIR]
    python -m experiments.run list

SET is a name from experiments/catalog/ or a path to a set file (see experiments/sets.py for
the format). The set is validated completely before anything starts. Each trial trains in its
own run dir, ``<root>/<set>/<trial_id>/``. Without --address a local Ray instance is started
for the command (loopback only, no dashboard, usage stats off) and stopped at the end.
--resume continues a set after a crash or a killed driver: finished trials are skipped, the
others continue from their run dirs' checkpoints. --no-ray runs the trials one after another
in this process (same run dirs; for machines without Ray, and to measure Ray's overhead).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from config.errors import ConfigError
from experiments import sets as set_files
from experiments.results import DEFAULT_ROOT, set_dir
from experiments.trial import is_finished, run_trial, write_json

SUBCOMMANDS = ("status", "plot", "list")


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m experiments.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("set", help="set name (experiments/catalog/) or set file")
    ap.add_argument("--address", help="an existing Ray cluster (default: a local instance for this command)")
    ap.add_argument("--resume", action="store_true", help="continue unfinished trials, skip finished ones")
    ap.add_argument("--max-concurrent", type=int, default=None, help="trials at a time (default: as resources allow)")
    ap.add_argument("--cpus-per-trial", type=float, default=1.0)
    ap.add_argument("--gpus-per-trial", type=float, default=0.0)
    ap.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    ap.add_argument("--retries", type=int, default=0, help="retry a failed trial up to K times (from its checkpoint)")
    ap.add_argument("--asha", action="store_true", help="ASHA early stopping per arm (its grid points compete)")
    ap.add_argument("--asha-grace", type=float, default=0.1, help="fraction of the budget before ASHA may stop a trial")
    ap.add_argument("--asha-reduction", type=float, default=3.0, help="ASHA reduction factor")
    ap.add_argument("--root", default=DEFAULT_ROOT, help="folder of the sets' results (default %(default)s)")
    ap.add_argument("--no-ray", action="store_true", help="run the trials one by one in this process")
    ap.add_argument("--verbose", action="store_true", help="print every evaluation")
    args = ap.parse_args(argv)
    for key in ("max_concurrent", "retries", "num_cpus"):
        val = getattr(args, key)
        if val is not None and val < (1 if key != "retries" else 0):
            ap.error(f"--{key.replace('_', '-')} must be >= {1 if key != 'retries' else 0}")
    if args.cpus_per_trial <= 0 or args.gpus_per_trial < 0:
        ap.error("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    if args.no_ray and (args.address or args.asha):
        ap.error("--no-ray runs in this process: no --address, no --asha")
    return args


def prepare(exp_set, folder: str, resume: bool) -> list:
    """The trials still to run; refuses to start a set over existing runs without --resume."""
    started = [t for t in exp_set.trials if os.path.exists(os.path.join(folder, t.trial_id))]
    if started and not resume:
        raise ConfigError(f"{folder} already has runs of this set ({len(started)} of {len(exp_set.trials)} trials): "
                          f"pass --resume to continue them, or choose another --root")
    os.makedirs(folder, exist_ok=True)
    write_json(os.path.join(folder, "set.json"), {"name": exp_set.name, "file": exp_set.path, "spec": exp_set.spec,
                                                  "trials": [t.trial_id for t in exp_set.trials]})
    return [t for t in exp_set.trials if not is_finished(os.path.join(folder, t.trial_id))]


def run_in_process(exp_set, folder: str, trials: list) -> int:
    """The trials one after another in this process; returns how many failed. Ctrl-C stops the
    set (the current trial ends with a checkpoint; --resume continues it)."""
    from trainers.base import Interrupted

    failed = 0
    for trial in trials:
        print(f"started   {trial.trial_id}", flush=True)
        try:
            info = run_trial(trial, os.path.join(folder, trial.trial_id), score=exp_set.score)
            print(f"{info['status']:<9} {trial.trial_id} (score {info.get('last', {}).get('score', float('nan')):.3f})",
                  flush=True)
        except Interrupted:
            print(f"interrupted {trial.trial_id}; continue the set with --resume", flush=True)
            return failed + len(trials) - trials.index(trial)
        except Exception as err:  # one failing trial does not stop the set
            failed += 1
            write_json(os.path.join(folder, trial.trial_id, "outcome.json"), {"status": "failed", "error": repr(err)})
            print(f"FAILED    {trial.trial_id}: {err!r}", flush=True)
    return failed


def run_set(args: argparse.Namespace) -> int:
    try:
        exp_set = set_files.load(args.set)
        folder = set_dir(args.root, exp_set.name)
        todo = prepare(exp_set, folder, args.resume)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    done = len(exp_set.trials) - len(todo)
    print(f"set {exp_set.name}: {len(exp_set.trials)} trials ({done} finished, {len(todo)} to run) -> {folder}",
          flush=True)
    if not todo:
        return 0
    t0 = time.time()
    if args.no_ray:
        failed = run_in_process(exp_set, folder, todo)
    else:
        try:
            import ray  # noqa: F401
        except ImportError:
            print('error: Ray is not installed: pip install "ray[tune]==2.60.0" (or run with --no-ray)', file=sys.stderr)
            return 2
        from experiments.ray_runner import RayInstance, RunOptions, tune_trials

        opts = RunOptions(address=args.address, max_concurrent=args.max_concurrent, cpus_per_trial=args.cpus_per_trial,
                          gpus_per_trial=args.gpus_per_trial, retries=args.retries, asha=args.asha,
                          asha_grace=args.asha_grace, asha_reduction=args.asha_reduction, num_cpus=args.num_cpus,
                          verbose=args.verbose)
        try:
            with RayInstance(folder, args.address, args.num_cpus):
                tune_trials(exp_set, folder, todo, opts)
        except ConnectionError as err:
            hint = " (a cluster with token authentication: set RAY_AUTH_MODE=token and its token)" if args.address else ""
            print(f"error: {err}{hint}", file=sys.stderr)
            return 2
        except RuntimeError as err:  # e.g. another driver still runs this set
            print(f"error: {err}", file=sys.stderr)
            return 2
        failed = sum(1 for t in todo if not is_finished(os.path.join(folder, t.trial_id)))
    print(f"set {exp_set.name}: {len(todo) - failed} of {len(todo)} trials finished in {time.time() - t0:.1f} s"
          + (f"; {failed} not finished (python -m experiments.run status {args.set} --root {args.root})" if failed else ""),
          flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "list":
        for name in set_files.available():
            try:
                exp_set = set_files.load(name, check_envs=False)
                print(f"{name:24s} {len(exp_set.trials):4d} trials  {exp_set.spec.get('description', '')}")
            except ConfigError as err:
                print(f"{name:24s} INVALID: {err}")
        return 0
    if argv and argv[0] == "status":
        from experiments.status import main as status_main

        return status_main(argv[1:])
    if argv and argv[0] == "plot":
        from experiments.plot import main as plot_main

        return plot_main(argv[1:])
    return run_set(parse(argv))


if __name__ == "__main__":
    sys.exit(main())
