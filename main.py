"""Command line: pick an env-type preset, apply overrides, train or resume.

    python main.py                                   # gridworld_varibad
    python main.py --env-type pointrobot_varibad --seed 3 --num_frames 2e6 --lr_policy 3e-4
    python main.py --resume logs/logs_GridNavi/varibad_73__2026-11-21_10-00-00
    python main.py --help | --list-env-types
"""
from __future__ import annotations

import json
import os
import sys
import time

from config.loader import (DEFAULT_ENV_TYPE, ConfigError, check_device, check_env_kwargs, describe_options, env_types,
                           resolve, split_cli)
from config.run_dir import load_run_config

USAGE = """usage: python main.py [--env-type NAME] [--<option> VALUE ...]
       python main.py --resume RUN_DIR [--num_frames N] [--device D] [--num_threads K] [--progress_bar B]
                      [--log_interval K] [--eval_interval K] [--vis_interval K] [--save_interval K] [--keep_checkpoints K]
                      [--lr_policy X] [--lr_vae X] [--policy_max_grad_norm X] [--encoder_max_grad_norm X]
                      [--decoder_max_grad_norm X]
       python main.py --test RUN_DIR [--num_steps 10]      (maml runs: test-time adaptation)
       python main.py --list-env-types | --help"""

RESUME_OVERRIDABLE = {"num_frames", "device", "num_threads", "progress_bar", "log_interval", "eval_interval",
                      "vis_interval", "save_interval", "keep_checkpoints",
                      # recovery from a NaN: lower learning rates, clip gradients (VariBAD loop)
                      "lr_policy", "lr_vae", "policy_max_grad_norm", "encoder_max_grad_norm", "decoder_max_grad_norm"}


def parse(argv: list[str]):
    """-> (mode, env_type or run_dir, overrides). Raises ConfigError on bad input."""
    if "-h" in argv or "--help" in argv:
        return "help", None, {}
    args = split_cli(argv)
    if "list_env_types" in args:
        return "list", None, {}
    if "test" in args:
        if len(args["test"]) != 1:
            raise ConfigError("--test takes one run directory")
        run_dir = args.pop("test")[0]
        bad = set(args) - {"num_steps", "device", "num_threads"}
        if bad:
            raise ConfigError("--test RUN_DIR takes only --num_steps, --device, --num_threads "
                              f"(got --{', --'.join(sorted(bad))})")
        if "num_steps" in args:
            args["maml_test_inner_steps"] = args.pop("num_steps")
        return "test", run_dir, {"progress_bar": ["false"], **args}
    if "resume" in args:
        if len(args["resume"]) != 1:
            raise ConfigError("--resume takes one run directory")
        run_dir = args.pop("resume")[0]
        bad = set(args) - RESUME_OVERRIDABLE
        if bad:
            raise ConfigError(f"a resumed run keeps its config; only {', '.join(sorted(RESUME_OVERRIDABLE))} "
                              f"may change (got --{', --'.join(sorted(bad))})")
        return "resume", run_dir, args
    env_type = args.pop("env_type", [DEFAULT_ENV_TYPE])
    if len(env_type) != 1:
        raise ConfigError("--env-type takes one preset name")
    return "train", env_type[0], args


def _record_resume_overrides(cfg, run_dir: str, overrides: dict) -> None:
    """Options changed on resume stay changed for later resumes (config.json) and are recorded
    with the time in ``resumes.jsonl``."""
    from utils.logger import save_json

    save_json(cfg.to_dict(), os.path.join(run_dir, "config.json"))
    with open(os.path.join(run_dir, "resumes.jsonl"), "a") as f:
        f.write(json.dumps({"time": time.strftime("%Y-%m-%d %H:%M:%S"),
                            "overrides": {k: getattr(cfg, k) for k in overrides}}) + "\n")


def _remove_new_run_dir(run_dir: str) -> None:
    """Remove the run dir this command just created, if nothing of a run is in it yet."""
    import shutil

    from utils.checkpoint import has_checkpoint

    if not has_checkpoint(run_dir):
        shutil.rmtree(run_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        mode, target, overrides = parse(argv)
        if mode == "help":
            print(USAGE + "\n\nenv-types: " + ", ".join(env_types()) + "\n\noptions:" + describe_options())
            return 0
        if mode == "list":
            print("\n".join(env_types()))
            return 0
        if mode == "train":
            cfg = resolve(target, overrides)
        else:
            cfg = load_run_config(target, overrides, need_checkpoint=mode == "test")
        if mode == "test" and cfg.trainer != "maml":
            raise ConfigError(f"--test (test-time adaptation) is for --trainer maml runs; {target} is a {cfg.trainer} run")
    except ConfigError as err:
        print(f"error: {err}\n{USAGE}", file=sys.stderr)
        return 2

    from trainers import build_trainer  # heavy imports after the CLI checks
    from trainers.base import Interrupted, NonFiniteError
    from utils.checkpoint import CheckpointError
    from utils.lock import RunLock, RunLockedError
    from utils.logger import new_run_dir, save_json

    try:  # everything that can be refused is refused before a run dir exists
        check_device(cfg.device)
        check_env_kwargs(cfg.env_name, cfg.env_kwargs)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if mode == "test":
        with RunLock(target):
            rows = build_trainer(cfg, target, resume=True).test_adaptation()
        print("test-time adaptation, return per inner step: " + " ".join(f"{r['return']:.3f}" for r in rows)
              + f"\n-> {os.path.join(target, 'test_result.csv')}")
        return 0
    if mode == "resume":
        run_dir = target
    else:
        run_dir = new_run_dir(cfg.results_log_dir, cfg.env_name, cfg.exp_label, cfg.seed)
        save_json(cfg.to_dict(), os.path.join(run_dir, "config.json"))  # at once: a killed start-up can be resumed
    print(f"{'resuming' if mode == 'resume' else 'training'} {cfg.env_type} -> {run_dir}", flush=True)
    try:
        with RunLock(run_dir):
            if mode == "resume" and overrides:
                _record_resume_overrides(cfg, run_dir, overrides)
            try:
                trainer = build_trainer(cfg, run_dir, resume=mode == "resume")
            except (ValueError, NotImplementedError) as err:  # a combination the models/envs refuse
                print(f"error: {err}", file=sys.stderr)
                if mode == "train":
                    _remove_new_run_dir(run_dir)
                return 2
            result = trainer.train()
    except RunLockedError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except NonFiniteError as err:
        print(f"error: training stopped: {err}", file=sys.stderr)
        return 3
    except Interrupted:
        print(f"\ninterrupted; checkpoint saved. Continue with: python main.py --resume {run_dir}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\naborted (no checkpoint of this iteration)", file=sys.stderr)
        return 130
    if result.get("returns"):
        print("final evaluation, return per episode: " + " ".join(f"{r:.3f}" for r in result["returns"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
