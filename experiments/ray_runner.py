"""Run a set's trials as a Ray Tune experiment: a local Ray instance (started and stopped here,
listening on 127.0.0.1 only, no dashboard, usage stats off) or an existing cluster (``address``).

Each Tune trial trains one set trial in its own run dir (``experiments.trial.run_trial``) and
reports every evaluation to Tune. The run dirs are the source of truth: a failed trial is
retried by Tune (``retries``) from its run dir's checkpoint, and ``resume`` starts a new Tune
experiment with only the unfinished trials, each continuing from its own checkpoint. Optional
ASHA early stopping runs one ASHA per arm, so that only an arm's grid points (e.g. learning
rates) compete, never two methods.

With ``address`` the cluster's nodes must see this checkout and the set folder at the same
paths (a shared file system): trials import the project from ``ROOT`` and write their run
dirs there.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from experiments.sets import ExperimentSet, Trial
from experiments.trial import ROOT, OUTCOME_FILE, TRIAL_FILE, read_json, run_trial, write_json

PIDS_FILE = ".ray_local_pids.json"


@dataclass
class RunOptions:
    """What ``python -m experiments.run`` was asked for."""

    address: str | None = None
    max_concurrent: int | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    retries: int = 0
    asha: bool = False
    asha_grace: float = 0.1         # fraction of the budget before ASHA may stop a trial
    asha_reduction: float = 3.0
    num_cpus: int | None = None     # local instance only (default: all cores)
    verbose: bool = False


# ----------------------------------------------------------------- the trainable (on a worker)
def trainable(config: dict) -> None:
    """Tune function trainable: one set trial; every evaluation becomes a Tune result."""
    from ray import tune

    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    os.chdir(ROOT)  # configs may name files relative to the checkout
    trial = Trial.from_dict(config["trial"])
    reported = []

    def report(metrics: dict) -> None:
        reported.append(1)
        tune.report(metrics)

    info = run_trial(trial, config["run_dir"], report=report, score=config["score"])
    if not reported and info.get("last"):
        tune.report(info["last"])  # finished before this start: give Tune its result


# ----------------------------------------------------------------- per-arm ASHA
def per_arm_asha(grace_fraction: float, reduction: float):
    """A Tune scheduler that runs one ASHA (on frames) per arm: trials compete only with the
    other grid points and seeds of their own arm."""
    from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler

    class PerArmASHA(FIFOScheduler):
        def __init__(self):
            super().__init__()
            self._metric, self._mode = "score", "max"
            self._groups: dict[str, AsyncHyperBandScheduler] = {}
            self._of: dict[str, AsyncHyperBandScheduler] = {}

        def set_search_properties(self, metric, mode, **spec) -> bool:
            self._metric, self._mode = metric or self._metric, mode or self._mode
            return True

        def on_trial_add(self, controller, trial):
            cfg = trial.config["trial"]
            group = cfg["group"]
            if group not in self._groups:
                budget = int(cfg["budget"])
                self._groups[group] = AsyncHyperBandScheduler(
                    time_attr="frames", metric=self._metric, mode=self._mode, max_t=budget,
                    grace_period=max(1, int(grace_fraction * budget)), reduction_factor=reduction,
                    stop_last_trials=False)
            self._of[trial.trial_id] = self._groups[group]
            self._of[trial.trial_id].on_trial_add(controller, trial)

        def on_trial_result(self, controller, trial, result):
            sched = self._of.get(trial.trial_id)
            return sched.on_trial_result(controller, trial, result) if sched else TrialScheduler.CONTINUE

        def on_trial_complete(self, controller, trial, result):
            sched = self._of.pop(trial.trial_id, None)
            if sched is not None and trial.trial_id in sched._trial_info:
                sched.on_trial_complete(controller, trial, result)

        def on_trial_remove(self, controller, trial):
            sched = self._of.pop(trial.trial_id, None)
            if sched is not None and trial.trial_id in sched._trial_info:
                sched.on_trial_remove(controller, trial)

        def debug_string(self) -> str:
            return "per-arm ASHA: " + ", ".join(f"{g}: {s._num_stopped} stopped" for g, s in self._groups.items())

    return PerArmASHA()


# ----------------------------------------------------------------- the driver side
def _outcome_callback(set_dir: str, verbose: bool, local: bool):
    """Tune callback: records each trial's outcome in its run dir; remembers local Ray pids."""
    from ray import tune

    class Outcomes(tune.Callback):
        def __init__(self):
            self._last_pid_scan = 0.0

        def _write(self, trial, status: str, **extra) -> None:
            run_dir = trial.config["trial"]["run_dir"]
            os.makedirs(run_dir, exist_ok=True)
            write_json(os.path.join(run_dir, OUTCOME_FILE), {"status": status, "time": time.time(), **extra})

        def on_trial_start(self, iteration, trials, trial, **info):
            print(f"started   {_tid(trial)}", flush=True)
            if local:
                record_local_pids(set_dir)  # its worker, too

        def on_trial_result(self, iteration, trials, trial, result, **info):
            if verbose:
                frames, score = result.get("frames", 0), result.get("score", float("nan"))
                print(f"result    {_tid(trial)}: frames {frames:,.0f} score {score:.3f}", flush=True)

        def on_trial_complete(self, iteration, trials, trial, **info):
            run_dir = trial.config["trial"]["run_dir"]
            own = read_json(os.path.join(run_dir, TRIAL_FILE)) or {}
            last = trial.last_result or {}
            done = own.get("status") == "done" or last.get("frames", 0) >= trial.config["trial"]["budget"]
            status = "done" if done else "stopped"
            self._write(trial, status, frames=last.get("frames"), score=last.get("score"))
            print(f"{status:<9} {_tid(trial)} (score {last.get('score', float('nan')):.3f})", flush=True)

        def on_trial_recover(self, iteration, trials, trial, **info):
            print(f"retrying  {_tid(trial)} (failed; continuing from its checkpoint)", flush=True)

        def on_trial_error(self, iteration, trials, trial, **info):
            self._write(trial, "failed", error=_error_text(trial))
            print(f"FAILED    {_tid(trial)}: {_error_text(trial).strip().splitlines()[-1:]}", flush=True)

        def on_step_end(self, iteration, trials, **info):
            if local and time.time() - self._last_pid_scan > 5:
                self._last_pid_scan = time.time()
                record_local_pids(set_dir)

    return Outcomes()


def _tid(trial) -> str:
    return os.path.basename(trial.config["trial"]["run_dir"])


def _error_text(trial) -> str:
    path = getattr(trial, "error_file", None)
    if path and os.path.isfile(path):
        with open(path) as f:
            return f.read()[-2000:]
    return str(getattr(trial, "error_msg", "") or "unknown error")


def record_local_pids(set_dir: str) -> None:
    """Remember this driver's descendant processes (the local Ray instance) so that a later
    run can end the ones a killed driver left behind (by pid and start time only)."""
    try:
        import psutil
    except ImportError:
        return
    path = os.path.join(set_dir, PIDS_FILE)
    known = {(p["pid"], p["create_time"]): p for p in (read_json(path) or {}).get("processes", [])}
    for proc in psutil.Process().children(recursive=True):
        try:
            known[(proc.pid, proc.create_time())] = {"pid": proc.pid, "create_time": proc.create_time(),
                                                     "name": " ".join(proc.cmdline()[:2])[:120]}
        except psutil.Error:
            continue
    write_json(path, {"driver": os.getpid(), "processes": list(known.values())})


def end_orphans(set_dir: str, timeout: float = 5.0) -> list[int]:
    """End the processes a previous (killed) driver of this set left running: only those
    recorded by ``record_local_pids`` whose pid and start time still match. Returns their pids."""
    path = os.path.join(set_dir, PIDS_FILE)
    record = read_json(path)
    if not record:
        return []
    try:
        import psutil
    except ImportError:
        return []
    if psutil.pid_exists(record.get("driver", -1)) and record.get("driver") != os.getpid():
        try:
            if "experiments" in " ".join(psutil.Process(record["driver"]).cmdline()):
                raise RuntimeError(f"another driver (pid {record['driver']}) is still running this set; "
                                   f"stop it first")
        except psutil.Error:
            pass
    procs = []
    for entry in record.get("processes", []):
        try:
            proc = psutil.Process(entry["pid"])
            if abs(proc.create_time() - entry["create_time"]) < 1e-3:
                procs.append(proc)
        except psutil.Error:
            continue
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    os.remove(path)
    return [p.pid for p in procs]


def loopback_only() -> None:
    """Keep a local instance on 127.0.0.1. On Linux Ray 2.60 resolves ``_node_ip_address=
    "127.0.0.1"`` to the machine's address and its servers listen on every interface; as a
    single-node instance (Ray's switch for Windows/macOS, which makes the node address the
    loopback one) GCS, raylet, workers and agents listen on 127.0.0.1 only. The switch is read
    when ray is imported (and by the workers, which inherit the environment)."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    if "ray" in sys.modules:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False


class RayInstance:
    """Context manager: a local Ray instance (loopback, no dashboard, no usage stats), or a
    connection to the cluster at ``address``."""

    def __init__(self, set_dir: str, address: str | None = None, num_cpus: int | None = None,
                 num_gpus: float | None = None):
        self.set_dir, self.address, self.num_cpus, self.num_gpus = set_dir, address, num_cpus, num_gpus

    def __enter__(self):
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        if not self.address:
            loopback_only()
        import ray

        path = os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        if self.address:  # remote workers get the project's path through a runtime env
            ray.init(address=self.address, runtime_env={"env_vars": {"PYTHONPATH": path}}, log_to_driver=False)
        else:
            removed = end_orphans(self.set_dir)
            if removed:
                print(f"ended {len(removed)} processes a killed driver of this set left behind", flush=True)
            # local workers inherit this environment (no runtime env: the prestarted workers can be used)
            os.environ["PYTHONPATH"] = path
            ray.init(address="local", num_cpus=self.num_cpus, num_gpus=self.num_gpus, include_dashboard=False,
                     log_to_driver=False, logging_level="warning")
            record_local_pids(self.set_dir)
        return self

    def __exit__(self, *exc):
        import ray

        ray.shutdown()
        if not self.address:
            end_orphans(self.set_dir, timeout=2.0)  # whatever did not exit with the instance
        return False


def tune_trials(exp_set: ExperimentSet, set_dir: str, trials: list[Trial], opts: RunOptions):
    """One Tune experiment over ``trials`` (on the Ray instance already connected)."""
    from ray import tune

    variants = [{"trial": t.to_dict(), "run_dir": os.path.join(set_dir, t.trial_id), "score": exp_set.score,
                 "group": t.arm, "budget": t.num_frames} for t in trials]
    param_space = {"trial": tune.grid_search(variants)}

    def name(trial) -> str:
        return os.path.basename(trial.config["trial"]["run_dir"])

    resources = {"cpu": opts.cpus_per_trial, "gpu": opts.gpus_per_trial}
    tuner = tune.Tuner(
        tune.with_resources(_unpack, resources),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric="score", mode="max", max_concurrent_trials=opts.max_concurrent, reuse_actors=True,
            scheduler=per_arm_asha(opts.asha_grace, opts.asha_reduction) if opts.asha else None,
            trial_name_creator=name, trial_dirname_creator=name),
        run_config=tune.RunConfig(
            name=time.strftime("tune_%Y-%m-%d_%H-%M-%S"), storage_path=os.path.join(set_dir, ".tune"),
            failure_config=tune.FailureConfig(max_failures=opts.retries),
            callbacks=[_outcome_callback(set_dir, opts.verbose, local=not opts.address)], verbose=0))
    return tuner.fit()


def _unpack(config: dict) -> None:
    """The grid_search dimension holds the whole trial description."""
    trainable(config["trial"])
