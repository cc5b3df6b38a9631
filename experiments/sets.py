"""Experiment sets as data: load a set file, validate it completely, expand it into trials.

A set is a Python file ``experiments/catalog/<name>.py`` that defines ``SET = dict(...)`` (or a
``.json`` file holding the same dict; any path to either works too):

    SET = dict(
        description="RNN+HN vs RNN on the grid, lr sweep",   # free text (optional)
        arms=["gridworld_varibad:rnn_hn", "gridworld_varibad:rnn"],  # "env_type[:method]" or dicts
        # env_types=[...], methods=[...]   # shorthand: every env-type x every method (None = the preset's)
        options={"eval_interval": 20},     # typed option values every trial gets
        grid={"lr_policy": [1e-3, 3e-4]},  # option -> values; the trials cover the Cartesian product
        seeds=[1, 2, 3],
        num_frames=2.5e5,                  # the frame budget of every trial ("preset": each preset's own)
        score="return",                    # what "best" / ASHA / aggregates rank by: return | success
    )

An arm given as a dict takes ``env_type``, ``method`` (optional), ``options`` (typed values for
this arm only, applied after the set's ``options``) and ``label`` (optional; default
``env_type`` or ``env_type+method``) and ``num_frames`` (this arm's budget). Trials are
arms x grid points x seeds; each is a normal training config resolved by
``config.loader.resolve`` (any trainer), so an unknown option, env-type or method, a value
of the wrong type or a bad combination is refused here, before anything starts, with one ``SetError`` listing every problem.
"""
from __future__ import annotations

import importlib.util
import itertools
import json
import os
from dataclasses import dataclass, field, replace
from typing import Any

from config.errors import ConfigError

CATALOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "catalog")
KEYS = {"description", "arms", "env_types", "methods", "options", "grid", "seeds", "num_frames", "score"}
ARM_KEYS = {"env_type", "method", "options", "label", "num_frames"}
RESERVED = {"seed": "seeds", "num_frames": "num_frames", "results_log_dir": "the run command's --root",
            "num_seeds": "seeds (one trial per seed)"}
SCORES = ("return", "success")
NOT_SET_NAMES = {"plot", "status", "run", "sets", "catalog"}


class SetError(ConfigError):
    """A set file that cannot run; the message lists every problem found."""


@dataclass(frozen=True)
class Trial:
    """One training run of a set: an arm at one grid point and one seed."""

    set_name: str
    arm: str                 # arm label
    env_type: str
    method: str | None
    point: dict[str, Any]    # grid values of this trial ({} without a grid)
    seed: int
    values: dict[str, Any]   # typed options for config.loader.resolve (method, seed, num_frames included)

    @property
    def num_frames(self) -> int:
        return int(self.values["num_frames"])

    @property
    def point_label(self) -> str:
        return ",".join(f"{k}={_fmt(v)}" for k, v in self.point.items())

    @property
    def variant(self) -> str:
        """Arm and grid point: the curve this trial belongs to (seeds averaged over)."""
        return self.arm + (f"[{self.point_label}]" if self.point else "")

    @property
    def trial_id(self) -> str:
        """Unique in the set, safe as a folder name: the trial's run dir under the set folder."""
        parts = [self.arm] + [f"{k}={_fmt(v)}" for k, v in self.point.items()] + [f"seed{self.seed}"]
        return "__".join(p.replace("/", "_").replace(" ", "") for p in parts)

    def to_dict(self) -> dict[str, Any]:
        return {"set_name": self.set_name, "arm": self.arm, "env_type": self.env_type, "method": self.method,
                "point": dict(self.point), "seed": self.seed, "values": dict(self.values)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Trial":
        return cls(d["set_name"], d["arm"], d["env_type"], d["method"], dict(d["point"]), int(d["seed"]),
                   dict(d["values"]))

    def config(self):
        """The resolved training config (raises ConfigError)."""
        from config.loader import resolve

        return resolve(self.env_type, values=self.values)


@dataclass
class ExperimentSet:
    """A validated set: its name, source file, spec and expanded trials."""

    name: str
    path: str
    spec: dict[str, Any]
    trials: list[Trial] = field(default_factory=list)

    @property
    def score(self) -> str:
        return self.spec.get("score", "return")

    @property
    def grid(self) -> dict[str, list]:
        return dict(self.spec.get("grid") or {})

    def arms(self) -> list[str]:
        return list(dict.fromkeys(t.arm for t in self.trials))

    def variants(self) -> list[str]:
        return list(dict.fromkeys(t.variant for t in self.trials))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "-".join(_fmt(x) for x in v)
    return json.dumps(v, sort_keys=True) if isinstance(v, dict) else str(v)


def available() -> list[str]:
    """Names of the sets in the catalog."""
    if not os.path.isdir(CATALOG):
        return []
    return sorted(os.path.splitext(f)[0] for f in os.listdir(CATALOG)
                  if f.endswith((".py", ".json")) and not f.startswith("_"))


def find(name_or_path: str) -> str:
    """Path of a set: a catalog name or a path to a .py/.json file."""
    if name_or_path.endswith((".py", ".json")) or os.sep in name_or_path:
        if not os.path.isfile(name_or_path):
            raise SetError(f"set file {name_or_path!r} does not exist")
        return os.path.abspath(name_or_path)
    for ext in (".py", ".json"):
        path = os.path.join(CATALOG, name_or_path + ext)
        if os.path.isfile(path):
            return path
    from utils.registry import closest

    raise SetError(f"unknown experiment set {name_or_path!r}.{closest(name_or_path, available())} "
                   f"Available: {', '.join(available())}")


def read_spec(path: str) -> dict[str, Any]:
    """The SET dict of a .py or .json set file."""
    if path.endswith(".json"):
        try:
            with open(path) as f:
                spec = json.load(f)
        except json.JSONDecodeError as err:
            raise SetError(f"{path}: not valid JSON: {err}") from None
    else:
        mod_name = "experiment_set_" + os.path.splitext(os.path.basename(path))[0]
        module_spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except Exception as err:  # a set file is user code: report its error as the set's problem
            raise SetError(f"{path}: could not be read: {type(err).__name__}: {err}") from None
        if not hasattr(module, "SET"):
            raise SetError(f"{path}: defines no SET = dict(...)")
        spec = module.SET
    if not isinstance(spec, dict):
        raise SetError(f"{path}: SET must be a dict, got {type(spec).__name__}")
    return spec


def load(name_or_path: str, check_envs: bool = True) -> ExperimentSet:
    """Read, validate and expand a set; raises one SetError listing every problem."""
    path = find(name_or_path)
    name = os.path.splitext(os.path.basename(path))[0]
    spec = read_spec(path)
    problems: list[str] = []
    if name in NOT_SET_NAMES:
        problems.append(f"{name!r} is a command name; rename the set file")
    trials = expand(name, spec, problems)
    if not problems:
        trials = _resolve_all(trials, problems, check_envs)
    if problems:
        raise SetError(f"experiment set {name!r} ({path}) is invalid:\n  - " + "\n  - ".join(problems))
    return ExperimentSet(name, path, spec, trials)


def expand(name: str, spec: dict[str, Any], problems: list[str]) -> list[Trial]:
    """Arms x grid points x seeds (structure checks only; appends to ``problems``)."""
    from config.schema import OPTIONS

    unknown = set(spec) - KEYS
    if unknown:
        problems.append(f"unknown key(s) {', '.join(sorted(unknown))}; a set takes {', '.join(sorted(KEYS))}")
    arms = _arms(spec, problems)
    shared = _options(spec.get("options", {}), "options", problems, OPTIONS)
    grid = spec.get("grid") or {}
    if not isinstance(grid, dict):
        problems.append("grid must be a dict option -> list of values")
        grid = {}
    typed_grid: dict[str, list] = {}
    for key, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            problems.append(f"grid[{key!r}] must be a non-empty list of values, got {values!r}")
        elif len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            problems.append(f"grid[{key!r}] repeats a value: {values!r}")
        else:
            typed = [_options({key: v}, "grid", problems, OPTIONS).get(key, v) for v in values]
            typed_grid[key] = typed
    seeds = spec.get("seeds")
    if not isinstance(seeds, (list, tuple)) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                                     for s in seeds):
        problems.append(f"seeds must be a non-empty list of integers, got {seeds!r}")
        seeds = []
    elif len(set(seeds)) != len(seeds):
        problems.append(f"seeds repeat: {seeds!r}")
    frames = spec.get("num_frames")
    if not _budget_ok(frames):
        problems.append(f"num_frames must be a positive whole number (2.5e5 is fine) or 'preset', got {frames!r}")
        frames = "preset"
    if spec.get("score", "return") not in SCORES:
        problems.append(f"score must be one of {', '.join(SCORES)}, got {spec.get('score')!r}")
    if "description" in spec and not isinstance(spec["description"], str):
        problems.append("description must be a string")
    trials = []
    keys = list(typed_grid)
    points = [dict(zip(keys, combo)) for combo in itertools.product(*(typed_grid[k] for k in keys))] or [{}]
    for arm in arms:
        overlap = set(grid) & set(arm["options"])
        if overlap:
            problems.append(f"arm {arm['label']!r} sets grid option(s) {', '.join(sorted(overlap))} itself")
        for point in points:
            for seed in seeds:
                budget = arm["num_frames"] if arm["num_frames"] is not None else frames
                values = {**shared, **arm["options"], **point, "seed": seed}
                if budget != "preset":
                    values["num_frames"] = int(budget)
                if arm["method"]:
                    values["method"] = arm["method"]
                trials.append(Trial(name, arm["label"], arm["env_type"], arm["method"], point, seed, values))
    ids = [t.trial_id for t in trials]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        problems.append(f"two arms share a label (give them distinct 'label's): {', '.join(dupes[:3])}")
    return trials


def _arms(spec: dict[str, Any], problems: list[str]) -> list[dict[str, Any]]:
    from config.schema import OPTIONS

    raw = list(spec.get("arms") or [])
    env_types, methods = spec.get("env_types"), spec.get("methods")
    if env_types is not None:
        if not isinstance(env_types, (list, tuple)) or not env_types:
            problems.append("env_types must be a non-empty list of env-type names")
        else:
            methods = methods if methods is not None else [None]
            if not isinstance(methods, (list, tuple)) or not methods:
                problems.append("methods must be a non-empty list of method names (None = the preset's own)")
            else:
                raw += [dict(env_type=e, method=m) for e in env_types for m in methods]
    elif methods is not None:
        problems.append("methods needs env_types (or write the arms as 'env_type:method')")
    if not raw:
        problems.append("the set has no arms: give arms=[...] or env_types=[...] (x methods=[...])")
    arms = []
    for i, arm in enumerate(raw):
        if isinstance(arm, str):
            env_type, _, method = arm.partition(":")
            arm = dict(env_type=env_type, method=method or None)
        if not isinstance(arm, dict) or not isinstance(arm.get("env_type"), str) or not arm.get("env_type"):
            problems.append(f"arm {i}: expected 'env_type[:method]' or a dict with env_type, got {arm!r}")
            continue
        bad = set(arm) - ARM_KEYS
        if bad:
            problems.append(f"arm {i} ({arm['env_type']}): unknown key(s) {', '.join(sorted(bad))}; "
                            f"an arm takes {', '.join(sorted(ARM_KEYS))}")
        method = arm.get("method")
        if method is not None and not isinstance(method, str):
            problems.append(f"arm {i}: method must be a name or None, got {method!r}")
            method = None
        _check_names(arm["env_type"], method, i, problems)
        label = arm.get("label") or (arm["env_type"] + (f"+{method}" if method else ""))
        options = _options(arm.get("options", {}), f"arm {label!r} options", problems, OPTIONS)
        budget = arm.get("num_frames")
        if budget is not None and not _budget_ok(budget):
            problems.append(f"arm {label!r}: num_frames must be a positive whole number or 'preset', got {budget!r}")
            budget = None
        arms.append(dict(env_type=arm["env_type"], method=method, label=str(label), options=options,
                         num_frames=budget))
    return arms


def _check_names(env_type: str, method: str | None, i: int, problems: list[str]) -> None:
    """Env-type and method names (so that they are reported with every other problem)."""
    from config.loader import env_types
    from config.methods import METHODS
    from utils.registry import closest

    if env_type not in env_types():
        problems.append(f"arm {i}: unknown env-type {env_type!r}.{closest(env_type, env_types())}")
    if method is not None and method not in METHODS:
        problems.append(f"arm {i}: unknown method {method!r}.{closest(method, METHODS)}")


def _budget_ok(frames: Any) -> bool:
    if frames == "preset":
        return True
    return isinstance(frames, (int, float)) and not isinstance(frames, bool) and frames >= 1 and frames == int(frames)


def _options(options: Any, where: str, problems: list[str], schema: dict) -> dict[str, Any]:
    """Checks names and value types against the schema; returns the (int-normalised) values."""
    if not isinstance(options, dict):
        problems.append(f"{where} must be a dict of option values, got {type(options).__name__}")
        return {}
    out = {}
    for key, val in options.items():
        if key in RESERVED:
            problems.append(f"{where}: {key!r} is set by the set's {RESERVED[key]}, not as an option")
            continue
        if key == "method":
            problems.append(f"{where}: give methods in arms ('env_type:method'), not as an option")
            continue
        if key not in schema:
            from utils.registry import closest

            problems.append(f"{where}: unknown option {key!r}.{closest(key, schema)}")
            continue
        ok, val = _typed(schema[key], val)
        if not ok:
            problems.append(f"{where}: {key}={val!r} is not a valid {schema[key].type}"
                            + (f" (one of {', '.join(map(str, schema[key].choices))})" if schema[key].choices else ""))
            continue
        out[key] = val
    return out


def _typed(opt, val: Any) -> tuple[bool, Any]:
    if val is None:
        return opt.optional, val
    kind = opt.type
    if kind.endswith("_list"):
        if not isinstance(val, (list, tuple)):
            return False, val
        items = [_typed_scalar(kind[:-5], v) for v in val]
        return all(ok for ok, _ in items), [v for _, v in items]
    ok, val = _typed_scalar(kind, val)
    if ok and opt.choices and val not in opt.choices:
        return False, val
    return ok, val


def _typed_scalar(kind: str, val: Any) -> tuple[bool, Any]:
    if kind == "bool":
        return isinstance(val, bool), val
    if kind == "int":
        if isinstance(val, bool) or not isinstance(val, (int, float)) or val != int(val):
            return False, val
        return True, int(val)
    if kind == "float":
        return isinstance(val, (int, float)) and not isinstance(val, bool), val
    if kind == "str":
        return isinstance(val, str), val
    return True, val  # json: any value


def _resolve_all(trials: list[Trial], problems: list[str], check_envs: bool) -> list[Trial]:
    """Every trial's config through config.loader.resolve (and its env registered); returns the
    trials with ``num_frames`` filled in where the budget is the preset's own."""
    seen: set[str] = set()
    envs = None
    if check_envs:
        try:
            from environments import ENVS as envs
        except ImportError:
            envs = None
    out = []
    for trial in trials:
        key = trial.variant
        try:
            cfg = trial.config()
        except ConfigError as err:
            if key not in seen:
                problems.append(f"arm {key}: {err}")
            seen.add(key)
            continue
        if envs is not None and key not in seen:
            try:
                envs.get(cfg.env_name)
            except KeyError as err:
                problems.append(f"arm {key}: env_name: {err.args[0]}")
        seen.add(key)
        out.append(replace(trial, values={**trial.values, "num_frames": int(cfg.num_frames)}))
    return out
