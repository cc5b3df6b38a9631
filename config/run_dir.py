"""Reading a run dir back: its config (for ``--resume`` and for analysis tools)."""
from __future__ import annotations

import os


def load_run_config(run_dir: str, overrides: dict, need_checkpoint: bool = False):
    """The run's resolved config (``config.json``, range-checked like any other source), with
    CLI-token ``overrides`` applied. A corrupt or foreign file is a one-line ConfigError."""
    from config.errors import ConfigError
    from config.loader import read_saved_config, resolve
    from utils.checkpoint import has_checkpoint

    env_type, saved = read_saved_config(run_dir)
    if need_checkpoint and not has_checkpoint(run_dir):
        raise ConfigError(f"{run_dir}: the run has no checkpoint")
    return resolve(env_type, overrides, values=saved, values_from=os.path.join(run_dir, "config.json"))
