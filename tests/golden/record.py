"""Golden values: every scalar a tiny run logs (TensorBoard tags and progress.csv columns,
except wall-clock ones), for a fixed set of env-types and methods at a fixed seed.

    python tests/golden/record.py          # rewrite tests/golden/values.json (only on purpose!)

``tests/test_golden.py`` re-runs the same configs and requires bit-identical values on CPU.
They were first recorded on the commit before the trainer/agent/component restructuring.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

CASES = {  # name -> (env_type, extra overrides)
    "gridworld_varibad": ("gridworld_varibad", {}),
    "pointrobot_varibad": ("pointrobot_varibad", {"env_kwargs": {"max_episode_steps": 20}}),
    "treasure_hunt_hyperx": ("treasure_hunt_hyperx", {"env_kwargs": {"max_episode_steps": 20}}),
    "room_hyperx": ("room_hyperx", {}),
    "cheetah_dir_varibad": ("cheetah_dir_varibad", {"env_kwargs": {"max_episode_steps": 20}}),
    "grid_rnn_hn": ("gridworld_varibad", {"method": "rnn_hn"}),
    "grid_ti_hn": ("gridworld_varibad", {"method": "ti_hn"}),
    "grid_splagger": ("gridworld_varibad", {"method": "splagger"}),
}
SKIP = ("time/", "fps")


def tiny(**extra) -> dict:
    base = {"num_frames": 384, "num_processes": 4, "policy_num_steps": 32, "precollect_len": 0,
            "ppo_num_minibatch": 2, "vae_batch_num_trajs": 2, "size_vae_buffer": 50, "num_vae_updates": 1,
            "eval_interval": 1, "vis_interval": 1000, "log_interval": 1, "save_interval": 1000,
            "num_eval_envs": 2, "progress_bar": False, "encoder_gru_hidden_size": 16, "latent_dim": 3,
            "policy_layers": [16], "vae_subsample_elbos": None, "vae_subsample_decodes": None, "seed": 11,
            "device": "cpu"}  # recorded on CPU: a GPU box must not pick cuda by default
    base.update(extra)
    return base


def capture(name: str) -> dict[str, float]:
    """Run case ``name`` and return {"tag@x": value} of everything it logged."""
    import torch

    from config.loader import resolve
    from utils import logger as logger_mod

    torch.set_num_threads(1)
    env_type, extra = CASES[name]
    cfg = resolve(env_type, values=tiny(**extra))
    seen: dict[str, float] = {}
    orig_add, orig_record, orig_dump = logger_mod.Logger.add, logger_mod.Logger.record, logger_mod.Logger.dump_row
    rows = []

    def add(self, tag, value, x):
        if not tag.startswith(SKIP):
            seen[f"{tag}@{x}"] = float(value)
        return orig_add(self, tag, value, x)

    def dump_row(self):
        rows.append({k: v for k, v in self.pending.items() if k not in SKIP})
        return orig_dump(self)

    logger_mod.Logger.add, logger_mod.Logger.dump_row = add, dump_row
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _train(cfg, os.path.join(tmp, "run"))
    finally:
        logger_mod.Logger.add, logger_mod.Logger.record, logger_mod.Logger.dump_row = orig_add, orig_record, orig_dump
    for k, row in enumerate(rows):
        for key, val in row.items():
            seen[f"csv/{key}@{k}"] = float(val)
    return seen


def _train(cfg, run_dir: str) -> None:
    try:
        from trainers import build_trainer
    except ImportError:  # the commit the values were first recorded on
        from metalearner import MetaLearner

        MetaLearner(cfg, run_dir).train()
        return
    build_trainer(cfg, run_dir).train()


if __name__ == "__main__":
    out = {name: capture(name) for name in CASES}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "values.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
    print(f"wrote {path}: " + ", ".join(f"{k} ({len(v)} values)" for k, v in out.items()))
