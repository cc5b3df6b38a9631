"""Resolve a run's config: schema defaults -> env-type preset (and what it extends) -> CLI.

A preset is ``config/presets/<env_type>.py`` defining ``OVERRIDES = dict(...)`` and
optionally ``EXTENDS = "<other preset>"``. Only differences are written down.
"""
from __future__ import annotations

import importlib
import inspect
import json
import math
import os
import pkgutil
from types import SimpleNamespace
from typing import Any

from config.errors import ConfigError
from config.schema import EXTENSION_MODULES, GROUPS, OPTIONS, Option, _num
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
    """Convert CLI tokens to the option's type and check its range, with messages that say what was
    expected. Always returns a value or raises ``ConfigError`` (never another exception)."""
    where = f"--{opt.name}"
    if opt.optional and len(tokens) == 1 and tokens[0].lower() == "none":
        return None
    if opt.type.endswith("_list"):
        base = opt.type[:-5]
        if len(tokens) == 1 and tokens[0] in ("[]", ""):
            return check_value(opt, [])
        return check_value(opt, [_scalar(base, t, where) for t in tokens])
    if len(tokens) != 1:
        raise ConfigError(f"{where} takes one value, got {len(tokens)}: {' '.join(tokens) or '(none)'}")
    return check_value(opt, _scalar(opt.type, tokens[0], where, opt.choices))


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
    except (ValueError, OverflowError, RecursionError, json.JSONDecodeError):
        expected = {"bool": "true/false/1/0", "int": "an integer (1e7 is fine)", "float": "a number",
                    "json": "JSON"}.get(kind, kind)
        raise ConfigError(f"{where}: {_short(tok)} is not {expected}") from None
    if choices and val not in choices:
        raise ConfigError(f"{where}: {val!r} is not one of {', '.join(map(str, choices))}")
    return val


def _short(val: Any, limit: int = 60) -> str:
    """repr of a value, cut to ``limit`` characters (messages stay one line)."""
    text = f"{val:.3g}" if isinstance(val, int) and not isinstance(val, bool) and abs(val) > 10**15 else repr(val)
    return text if len(text) <= limit else text[:limit - 3] + "..."


_KIND = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
         "int_list": "a list of integers", "float_list": "a list of numbers", "json": "JSON"}


def _typed(opt: Option, val: Any, where: str) -> Any:
    """Check the Python type of an already typed value (preset, method, config.json)."""
    kind = opt.type
    ok = {"bool": lambda v: isinstance(v, bool),
          "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "str": lambda v: isinstance(v, str),
          "int_list": lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, int) and not isinstance(x, bool)
                                                                      for x in v),
          "float_list": lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, (int, float))
                                                                        and not isinstance(x, bool) for x in v)}
    if kind == "json":
        try:
            json.dumps(val, allow_nan=True)
        except (TypeError, ValueError, RecursionError):
            raise ConfigError(f"{where}: {_short(val)} is not JSON") from None
        return val
    if kind == "int" and isinstance(val, float) and val.is_integer():
        val = int(val)  # 1e8 written in a preset
    if kind in ok and not ok[kind](val):
        raise ConfigError(f"{where}: {_short(val)} is not {_KIND[kind]}")
    return list(val) if isinstance(val, tuple) else val


def _in_range(opt: Option, x: Any, where: str) -> None:
    if isinstance(x, float) and opt.finite and not math.isfinite(x):
        raise ConfigError(f"{where}: {x} is not a finite number")
    if opt.low is None and opt.high is None:
        return
    too_low = opt.low is not None and (x < opt.low if opt.low_inclusive else x <= opt.low)
    too_high = opt.high is not None and (x > opt.high if opt.high_inclusive else x >= opt.high)
    if too_low or too_high:
        if opt.type in ("int", "int_list") and opt.low_inclusive and opt.high_inclusive:  # counts: the old wording
            bound = f">= {_num(opt.low)}" if too_low else f"<= {_num(opt.high)}"
            raise ConfigError(f"{where} must be {bound}, got {_short(x)}")
        rng = opt.describe_range()
        raise ConfigError(f"{where}: {x} is not {'in ' if rng[0] in '[(' else ''}{rng}")


def _check_rule(opt: Option, val: Any, where: str) -> None:
    if opt.rule == "object" and not isinstance(val, dict):
        raise ConfigError(f"{where}: {_short(val)} is not a JSON object (write it like '{{\"key\": 1}}')")
    if opt.rule in ("nonempty", "name") and isinstance(val, str):
        if not val.strip():
            raise ConfigError(f"{where}: an empty value is not allowed")
        if any(ord(c) < 32 for c in val):
            raise ConfigError(f"{where}: {_short(val)} contains control characters")
    if opt.rule == "name" and isinstance(val, str):
        seps = {"/", "\\"} | {s for s in (os.sep, os.altsep) if s}
        if any(s in val for s in seps) or ".." in val or val in (".", "~") or len(val) > 200:
            raise ConfigError(f"{where}: {_short(val)} must be a plain name (no path separators, no '..', "
                              f"at most 200 characters)")


def check_value(opt: Option, val: Any, source: str = "") -> Any:
    """Check a typed value against the option's type, choices and range; return it (tuples become
    lists). ``source`` (e.g. "preset 'x'") is added to the message. Raises ``ConfigError``."""
    where = f"--{opt.name}"
    try:
        if val is None:
            if not opt.optional:
                raise ConfigError(f"{where}: a value is required (none is not allowed)")
            return None
        val = _typed(opt, val, where)
        if opt.choices and val not in opt.choices:
            raise ConfigError(f"{where}: {_short(val)} is not one of {', '.join(map(str, opt.choices))}")
        if opt.type.endswith("_list"):
            if opt.min_len is not None and len(val) < opt.min_len:
                raise ConfigError(f"{where}: needs at least {opt.min_len} value{'s' if opt.min_len > 1 else ''}, "
                                  f"got {len(val)}")
            if opt.max_len is not None and len(val) > opt.max_len:
                raise ConfigError(f"{where}: at most {opt.max_len} values, got {len(val)}")
            for item in val:
                _in_range(opt, item, where + " items")
        elif opt.type in ("int", "float"):
            _in_range(opt, val, where)
        _check_rule(opt, val, where)
    except ConfigError as err:
        if source:
            raise ConfigError(f"{err} (from {source})") from None
        raise
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
            values: dict[str, Any] | None = None, values_from: str = "the given values") -> Config:
    """Defaults -> preset -> (already typed) ``values`` -> CLI-token ``overrides``.

    Every value, wherever it came from, is checked against its option's type and range
    (``check_value``); a message names the source of a bad value that did not come from the
    command line (``values_from`` names ``values``, e.g. "config.json of the resumed run")."""
    cfg = {name: opt.default for name, opt in OPTIONS.items()}
    source = dict.fromkeys(cfg, "the schema default")
    preset = _load_preset(env_type)
    cfg.update(preset)
    source.update(dict.fromkeys(preset, f"preset {env_type!r}"))
    method = (values or {}).get("method") or (overrides or {}).get("method", [None])[0]
    if method is not None:
        if not isinstance(method, str):
            raise ConfigError(f"--method: {_short(method)} is not a string")
        chosen = _method(method)
        cfg.update(chosen)
        source.update(dict.fromkeys(chosen, f"--method {method}"))
    for key, val in (values or {}).items():
        if key not in OPTIONS:
            raise ConfigError(f"unknown option {key!r} in {values_from}.{closest(str(key), OPTIONS)}")
        cfg[key] = val
        source[key] = values_from
    for key, tokens in (overrides or {}).items():
        if key not in OPTIONS:
            raise ConfigError(f"unknown option --{key}.{closest(key, OPTIONS)} "
                              f"Run `python main.py --help` for all options.")
        cfg[key] = parse_value(OPTIONS[key], tokens)
        source[key] = ""  # checked by parse_value
    for key, opt in OPTIONS.items():
        if source[key]:
            cfg[key] = check_value(opt, cfg[key], source[key])
    cfg["env_type"] = env_type
    config = Config(**cfg)
    validate(config)
    return config


def read_saved_config(run_dir: str) -> tuple[str, dict[str, Any]]:
    """(env_type, values) of ``<run_dir>/config.json``, for ``resolve(env_type, overrides, values,
    values_from=...)``. A missing, unreadable, corrupt or foreign file is a one-line ``ConfigError``."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise ConfigError(f"--resume {run_dir}: no config.json there (is this a run directory?)")
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"--resume {run_dir}: config.json cannot be read ({type(err).__name__})") from None
    except (ValueError, RecursionError) as err:
        raise ConfigError(f"--resume {run_dir}: config.json is corrupt ({str(err).splitlines()[0][:80]})") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("env_type"), str):
        raise ConfigError(f"--resume {run_dir}: config.json is not the config of a run (no env_type)")
    saved = dict(saved)
    env_type = saved.pop("env_type")
    return env_type, saved


def check_device(name: str) -> None:
    """Refuse a device this machine does not have: ``ConfigError`` such as
    "--device cuda: no CUDA device is visible on this machine". "cpu" and "auto" always pass."""
    if name in ("cpu", "auto"):
        return
    if not isinstance(name, str) or not (name == "cuda" or name.startswith("cuda:")):
        raise ConfigError(f"--device {name}: not a device (use cpu, cuda, cuda:<index> or auto)")
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is visible on this machine "
                          f"(use --device cpu or --device auto)")
    index = name.partition(":")[2]
    if index:
        count = torch.cuda.device_count()
        if not index.isdigit() or int(index) >= count:
            raise ConfigError(f"--device {name}: this machine has {count} CUDA device(s), "
                              f"cuda:0 ... cuda:{count - 1}")


_ENV_BASE_ARGS = ("num_envs", "seed", "device")  # given by the trainer, not by --env_kwargs


def _constructor_defaults(env_cls) -> dict[str, Any]:
    """Keyword -> default value of an env constructor (following ``**kwargs`` up the classes)."""
    out: dict[str, Any] = {}
    inits = [c.__init__ for c in env_cls.__mro__ if "__init__" in vars(c) and c is not object] \
        if isinstance(env_cls, type) else [env_cls]
    for init in inits:
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            break
        for p in params:
            if p.default is not inspect.Parameter.empty:
                out.setdefault(p.name, p.default)
    return out


def _check_env_kwarg_types(env_name: str, env_cls, kwargs: dict) -> None:
    """A value must have the type of the constructor's default (int for int, a number for a
    float, ...), be finite, and ``max_episode_steps`` must be >= 1."""
    defaults = _constructor_defaults(env_cls)
    for key, val in kwargs.items():
        if key not in defaults or defaults[key] is None:
            continue
        default = defaults[key]
        kinds = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}.get(type(default))
        if kinds is None:
            continue
        if not isinstance(val, kinds) or (type(default) is not bool and isinstance(val, bool)):
            raise ConfigError(f"--env_kwargs: {key} of {env_name} takes {_KIND.get(type(default).__name__, 'a value')} "
                              f"like its default {default!r}, got {_short(val)}")
        if isinstance(val, float) and not math.isfinite(val):
            raise ConfigError(f"--env_kwargs: {key} of {env_name} must be a finite number, got {val}")
        if key == "max_episode_steps" and val < 1:
            raise ConfigError(f"--env_kwargs: max_episode_steps of {env_name} must be >= 1, got {val}")


def _constructor_keywords(env_cls) -> list[str] | None:
    """Keyword names an env constructor takes, following ``**kwargs`` up the class hierarchy
    (``SparsePointEnv(goal_radius, **kwargs)`` also takes ``PointEnv``'s). None: unknown (a
    factory or a chain that ends in ``**kwargs``)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    inits = [c.__init__ for c in env_cls.__mro__ if "__init__" in vars(c) and c is not object] \
        if isinstance(env_cls, type) else [env_cls]
    names: list[str] = []
    for init in inits:
        try:
            params = list(inspect.signature(init).parameters.values())
        except (TypeError, ValueError):
            return None
        names += [p.name for p in params if p.kind in kinds and p.name != "self" and p.name not in _ENV_BASE_ARGS
                  and p.name not in names]
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            return names
    return None


def check_env_kwargs(env_name: str, kwargs: dict) -> None:
    """Refuse ``--env_kwargs`` keys the env's constructor does not take (before anything is
    created): ``ConfigError`` naming the unknown keys and the accepted ones. Envs whose
    constructor chain ends in ``**kwargs`` accept any key. Values must have the type of the
    constructor's default. An unknown env name is a ``ConfigError`` too."""
    if not isinstance(kwargs, dict):
        raise ConfigError(f"--env_kwargs: {_short(kwargs)} is not a JSON object")
    from environments import ENVS

    try:
        env_cls = ENVS.get(env_name)
    except KeyError as err:
        raise ConfigError(f"--env_name: {err.args[0]}") from None
    _check_env_kwarg_types(env_name, env_cls, kwargs)
    accepted = _constructor_keywords(env_cls)
    if accepted is None:  # **kwargs that go somewhere we cannot see: nothing more to check
        return
    reserved = sorted(k for k in kwargs if k in _ENV_BASE_ARGS)
    if reserved:
        raise ConfigError(f"--env_kwargs: {', '.join(reserved)} cannot be set here "
                          f"(use --num_processes / --seed / --device)")
    unknown = sorted(str(k) for k in kwargs if k not in accepted)
    if unknown:
        hint = closest(unknown[0], accepted)
        raise ConfigError(f"--env_kwargs: {env_name} does not take {', '.join(map(repr, unknown))}.{hint}"
                          f" Accepted: {', '.join(accepted) or '(none)'}")


def validate(cfg: Config) -> None:
    """Cross-field rules, checked once, with messages that say how to fix the command: the
    general ones, the VariBAD loop's (only for its configs) and each option module's."""
    from config.trainers import TRAINERS  # names only; nothing heavy is imported

    if cfg.trainer not in TRAINERS:
        raise ConfigError(f"--trainer: unknown trainer {cfg.trainer!r}.{closest(cfg.trainer, TRAINERS)} "
                          f"Available: {', '.join(sorted(TRAINERS))}")
    for key in ("num_frames", "num_threads", "log_interval", "eval_interval", "vis_interval", "save_interval"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"--{key} must be >= 1, got {getattr(cfg, key)}")
    if cfg.trainer == "varibad":
        validate_varibad(cfg)
    if cfg.num_seeds > 1:
        validate_num_seeds(cfg)
    for mod in EXTENSION_MODULES:
        if hasattr(mod, "validate"):
            mod.validate(cfg)


def validate_num_seeds(cfg: Config) -> None:
    """What ``--num_seeds`` > 1 is built for (trainers/multi_seed.py); the model checks (an MLP
    policy, the GRU encoder) come when the members are built."""
    if cfg.trainer != "varibad":
        raise ConfigError(f"--num_seeds > 1 is built for the VariBAD-family loop (--trainer varibad), not --trainer "
                          f"{cfg.trainer}; run one process per seed")
    if cfg.sample_embeddings:
        raise ConfigError("--num_seeds > 1 does not support --sample_embeddings true (the latent sample would draw "
                          "from the shared global RNG during the batched rollout)")
    if cfg.seed + cfg.num_seeds - 1 > 2**63 - 1:
        raise ConfigError("--seed + --num_seeds - 1 must stay below 2**63")


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
            rng = f" {opt.describe_range()}" if opt.describe_range() else ""
            lines.append(f"  --{opt.name} <{kind}>{choice}{rng}  (default {opt.describe_default()})\n      {opt.help}")
    return "\n".join(lines)
