"""Resolve a run's config: schema defaults -> env-type preset (and what it extends) -> CLI.

A preset is ``config/presets/<env_type>.py`` defining ``OVERRIDES = dict(...)`` and
optionally ``EXTENDS = "<other preset>"``. Only differences are written down.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
from types import SimpleNamespace
from typing import Any

from config.errors import ConfigError
from config.schema import EXTENSION_MODULES, GROUPS, OPTIONS, Option
from utils.registry import closest

import config.presets as _presets_pkg

DEFAULT_ENV_TYPE = "gridworld_varibad"
_TRUE = {"true", "1", "yes", "y", "t", "on"}
_FALSE = {"false", "0", "no", "n", "f", "off"}


class Config(SimpleNamespace):
    """Resolved options, attribute access. ``section(*groups)`` gives a sub-view."""

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def section(self, *groups: str) -> SimpleNamespace:
        for grp in groups:
            if grp not in GROUPS:
                raise KeyError(f"unknown option group {grp!r}")
        return SimpleNamespace(**{k: v for k, v in vars(self).items()
                                  if k in OPTIONS and OPTIONS[k].group in groups})


def env_types() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(_presets_pkg.__path__) if not m.name.startswith("_"))


def _all_presets() -> list[str]:
    """Public env-types plus shared bases (names starting with '_', not listed)."""
    return sorted(m.name for m in pkgutil.iter_modules(_presets_pkg.__path__))


def _load_preset(name: str, chain: tuple = ()) -> dict[str, Any]:
    if name not in _all_presets() or (not chain and name.startswith("_")):
        raise ConfigError(f"unknown env-type {name!r}.{closest(name, env_types())} "
                          f"Run `python main.py --list-env-types` for all presets.")
    if name in chain:
        raise ConfigError(f"preset cycle: {' -> '.join(chain + (name,))}")
    mod = importlib.import_module(f"config.presets.{name}")
    values = _load_preset(mod.EXTENDS, chain + (name,)) if getattr(mod, "EXTENDS", None) else {}
    for key, val in mod.OVERRIDES.items():
        if key not in OPTIONS:
            raise ConfigError(f"preset {name!r} sets unknown option {key!r}.{closest(key, OPTIONS)}")
        values[key] = val
    return values


def _method(name: str) -> dict[str, Any]:
    from config.methods import METHODS, PLANNED_METHODS

    if name in PLANNED_METHODS:
        raise ConfigError(f"--method {name}: {PLANNED_METHODS[name]}")
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}.{closest(name, METHODS)} Available: {', '.join(METHODS)}")
    return dict(METHODS[name], method=name)


def parse_value(opt: Option, tokens: list[str]) -> Any:
    """Convert CLI tokens to the option's type, with messages that say what was expected."""
    where = f"--{opt.name}"
    if opt.optional and len(tokens) == 1 and tokens[0].lower() == "none":
        return None
    if opt.type.endswith("_list"):
        base = opt.type[:-5]
        if len(tokens) == 1 and tokens[0] in ("[]", ""):
            return []
        return [_scalar(base, t, where) for t in tokens]
    if len(tokens) != 1:
        raise ConfigError(f"{where} takes one value, got {len(tokens)}: {' '.join(tokens) or '(none)'}")
    return _scalar(opt.type, tokens[0], where, opt.choices)


def _scalar(kind: str, tok: str, where: str, choices=None) -> Any:
    try:
        if kind == "bool":
            if tok.lower() in _TRUE:
                return True
            if tok.lower() in _FALSE:
                return False
            raise ValueError
        if kind == "int":
            val = float(tok) if any(c in tok for c in ".eE") else int(tok)
            if isinstance(val, float) and not val.is_integer():
                raise ValueError
            val = int(val)
        elif kind == "float":
            val = float(tok)
        elif kind == "json":
            val = json.loads(tok)
        else:
            val = tok
    except (ValueError, json.JSONDecodeError):
        expected = {"bool": "true/false/1/0", "int": "an integer (1e7 is fine)", "float": "a number",
                    "json": "JSON"}.get(kind, kind)
        raise ConfigError(f"{where}: {tok!r} is not {expected}") from None
    if choices and val not in choices:
        raise ConfigError(f"{where}: {val!r} is not one of {', '.join(map(str, choices))}")
    return val


def split_cli(argv: list[str]) -> dict[str, list[str]]:
    """['--a', '1', '--b', 'x', 'y'] -> {'a': ['1'], 'b': ['x', 'y']}. Accepts --a=1 too."""
    out: dict[str, list[str]] = {}
    key = None
    for tok in argv:
        if tok.startswith("--"):
            key, _, val = tok[2:].partition("=")
            key = key.replace("-", "_") if key not in OPTIONS else key
            if key in out:
                raise ConfigError(f"--{key} given twice")
            out[key] = [val] if val else []
        elif key is None:
            raise ConfigError(f"unexpected argument {tok!r} (options look like --name value)")
        else:
            out[key].append(tok)
    return out


def resolve(env_type: str, overrides: dict[str, list[str]] | None = None,
            values: dict[str, Any] | None = None) -> Config:
    """Defaults -> preset -> (already typed) ``values`` -> CLI-token ``overrides``."""
    cfg = {name: opt.default for name, opt in OPTIONS.items()}
    cfg.update(_load_preset(env_type))
    method = (values or {}).get("method") or (overrides or {}).get("method", [None])[0]
    if method is not None:
        cfg.update(_method(method))
    for key, val in (values or {}).items():
        if key not in OPTIONS:
            raise ConfigError(f"unknown option {key!r}.{closest(key, OPTIONS)}")
        cfg[key] = val
    for key, tokens in (overrides or {}).items():
        if key not in OPTIONS:
            raise ConfigError(f"unknown option --{key}.{closest(key, OPTIONS)} "
                              f"Run `python main.py --help` for all options.")
        cfg[key] = parse_value(OPTIONS[key], tokens)
    cfg["env_type"] = env_type
    config = Config(**cfg)
    validate(config)
    return config


def validate(cfg: Config) -> None:
    """Cross-field rules, checked once, with messages that say how to fix the command: the
    general ones, the VariBAD loop's (only for its configs) and each option module's."""
    from trainers import TRAINERS  # names only; nothing heavy is imported

    if cfg.trainer not in TRAINERS:
        raise ConfigError(f"--trainer: unknown trainer {cfg.trainer!r}.{closest(cfg.trainer, TRAINERS)} "
                          f"Available: {', '.join(sorted(TRAINERS))}")
    for key in ("num_frames", "num_threads", "log_interval", "eval_interval", "vis_interval", "save_interval"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"--{key} must be >= 1, got {getattr(cfg, key)}")
    if cfg.trainer == "varibad":
        validate_varibad(cfg)
    for mod in EXTENSION_MODULES:
        if hasattr(mod, "validate"):
            mod.validate(cfg)


def validate_varibad(cfg: Config) -> None:
    """Rules of the VariBAD-family loop (metalearner.py)."""
    positive = ("num_frames", "num_processes", "policy_num_steps", "max_rollouts_per_task",
                "ppo_num_epochs", "ppo_num_minibatch", "num_eval_envs", "num_threads", "log_interval",
                "eval_interval", "vis_interval", "save_interval", "latent_dim", "vae_batch_num_trajs")
    for key in positive:
        if getattr(cfg, key) < 1:
            raise ConfigError(f"--{key} must be >= 1, got {getattr(cfg, key)}")
    if cfg.policy_num_steps * cfg.num_processes < cfg.ppo_num_minibatch:
        raise ConfigError("--ppo_num_minibatch is larger than the batch (policy_num_steps * num_processes)")
    if cfg.disable_metalearner and cfg.pass_latent_to_policy:
        raise ConfigError("--disable_metalearner true has no latent: also set --pass_latent_to_policy false")
    if cfg.rlloss_through_encoder and cfg.disable_metalearner:
        raise ConfigError("--rlloss_through_encoder needs an encoder (--disable_metalearner false)")
    if cfg.norm_actions_pre_sampling and cfg.norm_actions_post_sampling:
        raise ConfigError("choose one of --norm_actions_pre_sampling / --norm_actions_post_sampling")
    if cfg.rew_pred_type == "bernoulli" and not cfg.multihead_for_reward:
        raise ConfigError("--rew_pred_type bernoulli is only implemented with --multihead_for_reward true")
    if cfg.use_hypernet and cfg.hypernet_input == "latent" and not (cfg.pass_latent_to_policy and not cfg.disable_metalearner):
        raise ConfigError("--use_hypernet with --hypernet_input latent needs a latent (an encoder and --pass_latent_to_policy)")
    if cfg.use_hypernet and cfg.hypernet_input == "task" and not cfg.pass_task_to_policy:
        raise ConfigError("--hypernet_input task needs --pass_task_to_policy true")
    if cfg.use_hypernet and cfg.hypernet_input == "latent" and not (cfg.pass_state_to_policy or cfg.pass_belief_to_policy
                                                                    or cfg.pass_task_to_policy):
        raise ConfigError("the hypernetwork's base net needs an input: also pass the state (--pass_state_to_policy)")
    if cfg.ppo_minibatch_by_env and not (cfg.rlloss_through_encoder and not cfg.disable_metalearner):
        raise ConfigError("--ppo_minibatch_by_env only applies with an encoder trained by the RL loss "
                          "(--rlloss_through_encoder true, e.g. --method rnn_hn)")
    if cfg.pass_task_as_onehot_id and not cfg.pass_task_to_policy:
        raise ConfigError("--pass_task_as_onehot_id needs --pass_task_to_policy true")
    if cfg.task_num_warmup or cfg.ti_coeff is not None:
        if cfg.disable_metalearner or not (cfg.pass_task_to_policy and cfg.pass_latent_to_policy):
            raise ConfigError("task-inference supervision needs an encoder, --pass_task_to_policy and --pass_latent_to_policy")
        if not cfg.policy_task_embedding_dim or cfg.policy_task_embedding_dim != cfg.policy_latent_embedding_dim:
            raise ConfigError("task-inference supervision needs --policy_task_embedding_dim == --policy_latent_embedding_dim")
    if cfg.ti_target == "base_net" and not (cfg.use_hypernet and cfg.hypernet_input == "latent"):
        raise ConfigError("--ti_target base_net (BI++HN) needs a hypernetwork conditioned on the latent "
                          "(--use_hypernet true --hypernet_input latent)")
    if cfg.ti_target == "base_net" and cfg.ti_coeff is None:
        raise ConfigError("--ti_target base_net needs --ti_coeff")
    if cfg.ti_hard_reset and not cfg.task_num_warmup:
        raise ConfigError("--ti_hard_reset needs a warm-up (--task_num_warmup)")
    if cfg.encoder_skip_type and not cfg.encoder_agg_type:
        raise ConfigError("--encoder_skip_type split needs an aggregator (--encoder_agg_type)")
    if cfg.pretrain_len and cfg.disable_decoder:
        raise ConfigError("--pretrain_len needs a decoder (there is nothing to pretrain for RL2)")


def describe_options() -> str:
    """The --help text: every option with type, default and help, by group."""
    lines = []
    for grp in GROUPS:
        lines.append(f"\n{grp}:")
        for opt in OPTIONS.values():
            if opt.group != grp:
                continue
            kind = opt.type + (" | none" if opt.optional else "")
            choice = f" {{{','.join(map(str, opt.choices))}}}" if opt.choices else ""
            lines.append(f"  --{opt.name} <{kind}>{choice}  (default {opt.describe_default()})\n      {opt.help}")
    return "\n".join(lines)
