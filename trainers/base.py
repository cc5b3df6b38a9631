"""What every trainer shares: the run dir, ``config.json``, reporting, the progress line,
atomic checkpoints and ``--resume``, the NaN guard, a clean Ctrl-C and callbacks.

A trainer subclasses ``Trainer`` and fills in five hooks:

    build()              construct envs, models, optimisers (seeded; called once)
    num_iterations       how many iterations the run has (property)
    train_iteration()    one iteration; advances ``self.frames``; returns its statistics
                         {group: {name: float}} (groups: see ``utils.reporting``)
    evaluate()           evaluation metrics, e.g. {"returns": [per episode], "success": [...]}
    trainer_state() / load_trainer_state(state)
                         everything besides the counters and RNG states needed to continue
and optionally ``log_diagnostics()`` (extra scalars at log iterations) and ``visualise()``.

The loop (``train``) is the same for all of them:

    evaluate the untrained agent (iteration 0)
    repeat until num_iterations or a stop request:
        stats = train_iteration();  iteration += 1;  NaN guard on stats
        log / evaluate (+ callbacks) / visualise / checkpoint on their intervals
    checkpoint

Callbacks see every evaluation: ``callback(trainer, metrics)`` (a function, or an object with
``on_evaluation(trainer, metrics)``) may return True to stop the run; it then ends after the
current iteration with a checkpoint that ``--resume`` continues. Ctrl-C does the same (a
second Ctrl-C aborts at once, without saving).
"""
from __future__ import annotations

import math
import os
import signal
import threading
from typing import Any, Callable, Iterable

from utils.checkpoint import has_checkpoint, load_checkpoint_with_info, save_checkpoint
from utils.logger import Progress, save_json
from utils.reporting import Reporter
from utils.seeding import pick_device, rng_state, seed_everything, set_rng_state, set_threads


class NonFiniteError(RuntimeError):
    """A loss or statistic became NaN/inf; the message says where."""


class Interrupted(RuntimeError):
    """Ctrl-C: the run stopped at an iteration boundary with a checkpoint."""


Callback = Callable[[Any, dict], Any]


class Trainer:
    def __init__(self, cfg, run_dir: str, resume: bool = False, resume_max_iteration: int | None = None):
        """resume_max_iteration: resume from the newest checkpoint at or before this iteration
        (-1: start over), as the seeds of a ``--num_seeds`` run do to stay in lock step."""
        self.cfg, self.run_dir = cfg, run_dir
        set_threads(cfg.num_threads)
        seed_everything(cfg.seed, cfg.deterministic_execution)
        self.device = pick_device(cfg.device)
        self.iter, self.frames = 0, 0
        self.last_eval: dict = {}
        self.stop_requested = False
        self.build()
        info = None
        if resume and has_checkpoint(run_dir) and (resume_max_iteration is None or resume_max_iteration >= 0):
            state, info = load_checkpoint_with_info(run_dir, max_iteration=resume_max_iteration)
            self.load_state_dict(state)
        # a resumed run dir without a checkpoint (killed during start-up) starts over: all its rows go
        self.reporter = Reporter(run_dir, resume=resume, resume_iteration=self.iter if info else -1,
                                 resume_time=info.saved_at if info else None)
        if not resume:  # the config as it ran: the device actually used, not "auto"
            save_json({**cfg.to_dict(), "device": str(self.device)}, os.path.join(run_dir, "config.json"))
        self.progress = Progress(cfg.num_frames, cfg.progress_bar, start_frames=self.frames)

    # ------------------------------------------------------------- hooks for subclasses
    def build(self) -> None:
        raise NotImplementedError

    @property
    def num_iterations(self) -> int:
        raise NotImplementedError

    def train_iteration(self) -> dict:
        raise NotImplementedError

    def evaluate(self) -> dict:
        raise NotImplementedError

    def trainer_state(self) -> dict:
        raise NotImplementedError

    def load_trainer_state(self, state: dict) -> None:
        raise NotImplementedError

    def log_diagnostics(self) -> None:
        """Extra scalars at log iterations (the reporter is ``self.reporter``)."""

    def visualise(self) -> None:
        """Behaviour plots into <run_dir>/plots (every ``vis_interval`` iterations)."""

    def progress_info(self) -> str:
        """What the progress line shows after the frames: the last evaluation's returns."""
        ret = self.last_eval.get("returns")
        return "" if ret is None else "return/ep " + " ".join(f"{r:.2f}" for r in ret)

    # ------------------------------------------------------------- the loop
    def train(self, callbacks: Iterable[Callback] = ()) -> dict:
        """Run until num_iterations (or a stop request); returns the last evaluation."""
        self.callbacks = list(callbacks)
        with _CtrlC(self):
            if self.iter == 0:
                self._evaluate_and_report()  # the untrained agent: the curves' first point
            while self.iter < self.num_iterations and not self.stop_requested:
                stats = self.train_iteration()
                self.iter += 1
                self.check_finite(stats)
                self._on_iteration_end(stats)
        self.save()
        self.progress.close()
        self.reporter.close()
        if getattr(self, "_interrupted", False):
            raise Interrupted(f"interrupted at iteration {self.iter}; checkpoint saved")
        return self.last_eval

    def request_stop(self) -> None:
        """End the run after the current iteration (with a checkpoint)."""
        self.stop_requested = True

    def _on_iteration_end(self, stats: dict) -> None:
        cfg, it = self.cfg, self.iter
        if it % cfg.log_interval == 0 and stats:
            self.reporter.training(stats, it, self.frames)
            self.log_diagnostics()
            self.reporter.add("time/fps", self.progress.fps(self.frames), self.frames)
        last = it == self.num_iterations
        if it % cfg.eval_interval == 0 or last:
            self._evaluate_and_report(vis=it % cfg.vis_interval == 0 or last)
        elif it % cfg.vis_interval == 0:
            self.visualise()
        if it % cfg.save_interval == 0:
            self.save()
        self.progress.update(self.frames, self.progress_info())

    def _evaluate_and_report(self, vis: bool = True) -> None:
        res = self.evaluate()
        self.last_eval = res
        self.reporter.evaluation(res, self.iter, self.frames, self.progress.fps(self.frames))
        if vis:
            self.visualise()
        metrics = {"iteration": self.iter, "frames": self.frames, **res}
        for cb in self.callbacks if hasattr(self, "callbacks") else ():
            fn = getattr(cb, "on_evaluation", cb)
            if fn(self, metrics) is True:
                self.request_stop()

    def check_finite(self, stats: dict) -> None:
        for group, values in stats.items():
            for key, val in values.items():
                if not math.isfinite(val):
                    raise NonFiniteError(
                        f"{group}/{key} is {val} at iteration {self.iter}, frame {self.frames} "
                        f"(env {self.cfg.env_name}, seed {self.cfg.seed}). Last checkpoint: "
                        f"{os.path.join(self.run_dir, 'checkpoints')}. Try a lower --lr_policy/--lr_vae.")

    # ------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {"iter": self.iter, "frames": self.frames, **self.trainer_state(), "rng": rng_state(),
                "config": self.cfg.to_dict(), "last_eval": _plain(self.last_eval)}

    def load_state_dict(self, state: dict) -> None:
        self.iter, self.frames = state["iter"], state["frames"]
        self.last_eval = state.get("last_eval", {})  # the progress line shows it until the next evaluation
        self.load_trainer_state(state)
        set_rng_state(state["rng"])

    def save(self) -> None:
        """An atomic, verified checkpoint (the last ``keep_checkpoints`` are kept). Logs are
        flushed first: a checkpoint never refers to rows that are not on disk."""
        self.reporter.flush()
        save_checkpoint(self.state_dict(), self.run_dir, keep=self.cfg.keep_checkpoints)


def _plain(metrics: dict) -> dict:
    """The list/number entries of an evaluation (no traces or arrays) for the checkpoint."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, list))}


class _CtrlC:
    """First Ctrl-C: finish the iteration, checkpoint, stop. Second: abort at once."""

    def __init__(self, trainer: Trainer):
        self.trainer, self.previous = trainer, None

    def _handler(self, signum, frame):
        if self.trainer.stop_requested and getattr(self.trainer, "_interrupted", False):
            raise KeyboardInterrupt
        self.trainer._interrupted = True
        self.trainer.request_stop()
        print("\nCtrl-C: finishing this iteration and saving a checkpoint (Ctrl-C again to abort)", flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False
