"""Reading a run dir back: its config (for ``--resume`` and for analysis tools)."""
from __future__ import annotations

import json
import os

from config.errors import ConfigError


def load_run_config(run_dir: str, overrides: dict):
    """The run's resolved config (``config.json``), with CLI-token ``overrides`` applied."""
    from config.loader import resolve

    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise ConfigError(f"--resume {run_dir}: no config.json there (is this a run directory?)")
    if not os.path.isdir(os.path.join(run_dir, "checkpoints")) or not os.listdir(os.path.join(run_dir, "checkpoints")):
        raise ConfigError(f"--resume {run_dir}: the run has no checkpoint yet; nothing to resume")
    try:
        with open(path) as f:
            saved = json.load(f)
        env_type = saved.pop("env_type")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, AttributeError) as err:
        raise ConfigError(f"--resume {run_dir}: config.json is corrupt ({type(err).__name__}: {err})") from None
    return resolve(env_type, overrides, values=saved)
