"""Property-based tests of the config checks: for every option of the schema, generated bad
values (wrong type tokens, out-of-range numbers, nan/inf, bad list items and lengths, path-like
names, non-object JSON) are refused by ``resolve`` with ``ConfigError`` (never another
exception), from the command line and as typed values (presets, a resumed config.json); good
values are accepted. Bad command lines make ``main.main`` exit with 2 and create nothing."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.errors import ConfigError
from config.loader import _FALSE, _TRUE, check_device, check_env_kwargs, check_value, parse_value, resolve
from config.schema import OPTIONS, Option

ENV_TYPE = "gridworld_varibad"
FUZZ = settings(max_examples=8, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
CORE_GROUPS = ("general", "policy_inputs", "policy_net", "hypernet", "task_inference", "rl", "vae", "encoder",
               "decoder", "exploration", "logging")
NUMERIC = ("int", "float", "int_list", "float_list")


def _names(opt: Option) -> set[str]:
    """Values of string options that are valid without choices (trainer and method names)."""
    if opt.name == "trainer":
        from trainers import TRAINERS

        return set(TRAINERS)
    if opt.name == "method":
        from config.methods import METHODS, PLANNED_METHODS

        return set(METHODS) | set(PLANNED_METHODS)
    return set()


# ------------------------------------------------------------------ strategies: bad values
def _bad_number(opt: Option, kind: str) -> st.SearchStrategy:
    """Out-of-range numbers of ``kind`` (int/float) for ``opt``, or nothing when it has no range."""
    parts = []
    if opt.low is not None:
        if kind == "int":
            parts.append(st.integers(max_value=math.ceil(opt.low) - (1 if opt.low_inclusive else 0),
                                     min_value=-10**20))
        else:
            parts.append(st.floats(max_value=opt.low, exclude_max=opt.low_inclusive, min_value=-1e300))
    if opt.high is not None:
        if kind == "int":
            parts.append(st.integers(min_value=math.floor(opt.high) + (1 if opt.high_inclusive else 0),
                                     max_value=10**40))
        else:
            parts.append(st.floats(min_value=opt.high, exclude_min=opt.high_inclusive, max_value=1e300))
    return st.one_of(parts) if parts else st.nothing()


def _not_int_token() -> st.SearchStrategy:
    fixed = st.sampled_from(["abc", "1.5", "nan", "inf", "-inf", "1e400", "", "0x10", "1,000", "true", "[1]", "None?"])
    frac = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6).filter(
        lambda x: not x.is_integer()).map(repr)
    return st.one_of(fixed, frac)


def _not_float_token() -> st.SearchStrategy:
    return st.one_of(st.sampled_from(["abc", "", "1.0.0", "--1", "one", "1e", "0x1p3", "[0.5]"]),
                     st.text(alphabet="abcxyz!/ ", min_size=1, max_size=6))


def bad_tokens(opt: Option) -> st.SearchStrategy:
    """CLI token lists that ``resolve`` must refuse for ``opt``."""
    kind, parts = opt.type, []
    if kind in ("int", "float", "bool", "str", "json"):
        parts.append(st.just(["1", "2"]))  # scalars take one value
    if kind == "int":
        parts += [_not_int_token().map(lambda t: [t]), _bad_number(opt, "int").map(lambda x: [str(x)])]
    elif kind == "float":
        parts += [_not_float_token().map(lambda t: [t]), _bad_number(opt, "float").map(lambda x: [repr(x)])]
        if opt.finite:
            parts.append(st.sampled_from(["nan", "inf", "-inf", "NaN", "Infinity", "1e999"]).map(lambda t: [t]))
    elif kind == "bool":
        parts.append(st.text(max_size=8).filter(lambda t: t.lower() not in _TRUE | _FALSE).map(lambda t: [t]))
    elif kind == "str":
        valid = set(opt.choices or ()) | _names(opt) | ({"none", "None", "NONE"} if opt.optional else set())
        if opt.choices or _names(opt):
            parts.append(st.text(max_size=12).filter(lambda t: t not in valid and t.lower() != "none")
                         .map(lambda t: [t]))
        if opt.rule in ("name", "nonempty"):
            parts.append(st.sampled_from(["", "   ", "\t", "a\x00b", "a\nb"]).map(lambda t: [t]))
        if opt.rule == "name":
            parts.append(st.tuples(st.text(max_size=5), st.sampled_from(["/", "\\", "..", "../../"]),
                                   st.text(max_size=5)).map(lambda p: ["".join(p)]))
    elif kind == "json":
        not_json = st.text(max_size=10).filter(lambda t: not _is_json(t))
        parts.append(not_json.map(lambda t: [t]))
        if opt.rule == "object":
            scalars = st.one_of(st.integers(), st.booleans(), st.text(max_size=5), st.none(),
                                st.lists(st.integers(), max_size=3))
            parts.append(scalars.map(lambda v: [json.dumps(v)]))
    elif kind.endswith("_list"):
        base = kind[:-5]
        bad_item = _bad_number(opt, base).map(str if base == "int" else repr)
        good_item = _good_number(opt, base).map(str if base == "int" else repr)
        parts.append(st.tuples(st.lists(good_item, max_size=2), bad_item).map(lambda p: [*p[0], p[1]]))
        parts.append((_not_int_token() if base == "int" else _not_float_token()).filter(
            lambda t: t not in ("", "[]") and t.lower() != "none").map(lambda t: [t]))
        if opt.min_len:
            parts.append(st.sampled_from([[], ["[]"], [""]]))
        if opt.max_len is not None:
            parts.append(st.just([str(max(int(opt.low or 1), 1))] * (opt.max_len + 1)))
    return st.one_of(parts)


def _is_json(tok: str) -> bool:
    try:
        json.loads(tok)
        return True
    except ValueError:
        return False


# ------------------------------------------------------------------ strategies: good values
def _good_number(opt: Option, kind: str) -> st.SearchStrategy:
    low = opt.low if opt.low is not None else -1e6
    high = opt.high if opt.high is not None else (low + 10**6 if low > -1e6 else 1e6)
    if kind == "int":
        lo = math.ceil(low) + (0 if opt.low_inclusive or not float(low).is_integer() else 1)
        hi = math.floor(high) - (0 if opt.high_inclusive or not float(high).is_integer() else 1)
        return st.integers(min_value=lo, max_value=hi)
    return st.floats(min_value=low, max_value=high, exclude_min=not opt.low_inclusive,
                     exclude_max=not opt.high_inclusive, allow_nan=False, allow_infinity=False)


def good_tokens(opt: Option) -> st.SearchStrategy:
    """(tokens, expected parsed value) pairs that must be accepted."""
    kind = opt.type
    if kind == "int":
        return _good_number(opt, "int").map(lambda x: ([str(x)], x))
    if kind == "float":
        return _good_number(opt, "float").map(lambda x: ([repr(x)], x))
    if kind == "bool":
        return st.sampled_from(sorted(_TRUE | _FALSE)).map(lambda t: ([t], t in _TRUE))
    if kind == "str":
        if opt.choices or _names(opt):
            return st.sampled_from(sorted(set(opt.choices or ()) | _names(opt))).map(lambda t: ([t], t))
        return st.from_regex(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,15}", fullmatch=True).filter(
            lambda t: ".." not in t and t.lower() != "none").map(lambda t: ([t], t))
    if kind == "json":
        objs = st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=3)
        return objs.map(lambda d: ([json.dumps(d)], d))
    base = kind[:-5]
    size = dict(min_size=opt.min_len or 0, max_size=min(opt.max_len or 4, 4))
    return st.lists(_good_number(opt, base), **size).map(
        lambda xs: ([str(x) if base == "int" else repr(x) for x in xs] or ["[]"], xs))


def bad_typed(opt: Option) -> st.SearchStrategy:
    """Typed values (as a preset or a resumed config.json holds them) that must be refused."""
    kind, parts = opt.type, []
    if not opt.optional:
        parts.append(st.none())
    wrong = {"int": st.one_of(st.text(max_size=4), st.booleans(), st.lists(st.integers(), max_size=2),
                              st.floats().filter(lambda x: not x.is_integer() if math.isfinite(x) else True)),
             "float": st.one_of(st.text(max_size=4), st.booleans(), st.dictionaries(st.text(max_size=2), st.integers())),
             "bool": st.one_of(st.integers(), st.text(max_size=4), st.floats()),
             "str": st.one_of(st.integers(), st.booleans(), st.lists(st.text(max_size=2), max_size=2)),
             "int_list": st.one_of(st.integers(), st.text(max_size=4), st.lists(st.text(max_size=2), min_size=1,
                                                                                   max_size=2)),
             "float_list": st.one_of(st.floats(), st.text(max_size=4))}
    if kind in wrong:
        parts.append(wrong[kind])
    if kind in ("int", "float"):
        parts.append(_bad_number(opt, kind))
    if kind == "float" and opt.finite:
        parts.append(st.sampled_from([math.nan, math.inf, -math.inf]))
    if kind.endswith("_list"):
        parts.append(_bad_number(opt, kind[:-5]).map(lambda x: [x]))
    if kind == "json":
        parts.append(st.just({"a": object()}))
        if opt.rule == "object":
            parts.append(st.one_of(st.integers(), st.lists(st.integers(), max_size=2), st.text(max_size=3)))
    if kind == "str" and opt.rule == "name":
        parts.append(st.sampled_from(["", "../x", "a/b", "..", "x\\y"]))
    return st.one_of(parts)


# ------------------------------------------------------------------ the tests
@pytest.mark.parametrize("name", sorted(OPTIONS))
@FUZZ
@given(data=st.data())
def test_every_option_refuses_bad_and_accepts_good_values(name, data):
    """Per option, each example draws: bad CLI tokens (refused by ``resolve`` with a
    ``ConfigError``, never another exception), good CLI tokens (parsed to the expected value) and
    a bad typed value as a preset or a resumed config.json holds it (refused, naming the source)."""
    opt = OPTIONS[name]
    tokens = data.draw(bad_tokens(opt), label="bad tokens")
    with pytest.raises(ConfigError):
        resolve(ENV_TYPE, {name: tokens})

    tokens, want = data.draw(good_tokens(opt), label="good tokens")
    got = parse_value(opt, tokens)
    assert got == want or (isinstance(want, float) and math.isclose(got, want)), (tokens, got)
    try:  # the whole config may still break a cross-field rule, but only with a ConfigError
        resolve(ENV_TYPE, {name: tokens})
    except ConfigError as err:
        assert not str(err).startswith(f"--{name}: {tokens[0]!r}"), err

    value = data.draw(bad_typed(opt), label="bad typed value")
    with pytest.raises(ConfigError) as err:
        resolve(ENV_TYPE, values={name: value}, values_from="config.json of the run")
    if name != "method":  # a bad method name is refused before the values are read
        assert "config.json of the run" in str(err.value)


def test_defaults_satisfy_their_own_ranges():
    for opt in OPTIONS.values():
        assert check_value(opt, opt.default) == opt.default, opt.name


def test_every_numeric_core_option_has_a_range():
    missing = [o.name for o in OPTIONS.values()
               if o.group in CORE_GROUPS and o.type in NUMERIC and o.low is None and o.high is None]
    assert not missing, f"numeric options without a range: {missing}"


@pytest.mark.parametrize("tokens, message", [
    (["--policy_gamma", "2"], "--policy_gamma: 2.0 is not in [0, 1]"),
    (["--lr_policy", "nan"], "--lr_policy: nan is not a finite number"),
    (["--lr_policy", "0"], "--lr_policy: 0.0 is not > 0"),
    (["--size_vae_buffer", "0"], "--size_vae_buffer must be >= 1, got 0"),
    (["--num_frames", "1e30"], "--num_frames must be <= 1e12"),
    (["--policy_layers", "32", "-4"], "--policy_layers items must be >= 1, got -4"),
    (["--exp_label", "../../escape"], "must be a plain name"),
    (["--results_log_dir", ""], "--results_log_dir: an empty value is not allowed"),
    (["--env_kwargs", "[1, 2]"], "is not a JSON object"),
    (["--state_expl_idx", "[]"], "--state_expl_idx: needs at least 1 value"),
])
def test_messages_name_option_value_and_range(tokens, message):
    from config.loader import split_cli

    with pytest.raises(ConfigError) as err:
        resolve(ENV_TYPE, split_cli(tokens))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_saved_config_values_are_checked_with_their_source():
    with pytest.raises(ConfigError, match=r"--policy_tau: 1.5 is not in \[0, 1\] \(from config.json\)"):
        resolve(ENV_TYPE, values={"policy_tau": 1.5}, values_from="config.json")


def test_check_env_kwargs_names_unknown_and_accepted_keys():
    check_env_kwargs("GridNavi", {"max_episode_steps": 10})
    with pytest.raises(ConfigError) as err:
        check_env_kwargs("GridNavi", {"max_episode_stepz": 10, "zzz": 1})
    msg = str(err.value)
    assert "'max_episode_stepz'" in msg and "'zzz'" in msg and "Accepted:" in msg and "max_episode_steps" in msg
    with pytest.raises(ConfigError, match="--num_processes"):
        check_env_kwargs("GridNavi", {"num_envs": 3})
    with pytest.raises(ConfigError, match="--env_name"):
        check_env_kwargs("NoSuchEnv", {})


def test_check_device(monkeypatch):
    import torch

    check_device("cpu")
    check_device("auto")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="--device cuda: no CUDA device is visible on this machine"):
        check_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    check_device("cuda")
    with pytest.raises(ConfigError, match="1 CUDA device"):
        check_device("cuda:3")
    with pytest.raises(ConfigError, match="not a device"):
        check_device("tpu")


def test_range_keywords_are_checked_by_add():
    from config.schema import _add

    with pytest.raises(TypeError, match="unknown range keyword"):
        _add("x", "never_added", "int", 1, "help", lowest=3)


# ------------------------------------------------------------------ main.main in-process
BAD_COMMAND_LINES = [
    ["--lr_policy", "nan"], ["--policy_gamma", "2"], ["--size_vae_buffer", "0"], ["--num_frames", "1e30"],
    ["--exp_label", "../../escape"], ["--exp_label", "a/b"], ["--policy_layers", "0"], ["--policy_layers", "-3"],
    ["--env_kwargs", "[1]"], ["--env_kwargs", "{"], ["--num_processes", "-1"], ["--policy_tau", "1.5"],
    ["--lr_vae", "inf"], ["--seed", "-1"], ["--ppo_clip_param", "-0.1"], ["--kl_weight", "-1"],
    ["--state_expl_idx", "-1"], ["--policy_layers_hyper", "2"], ["--num_frames"], ["--device", "tpu"],
]


def _run_main(argv, tmp_path, monkeypatch, capsys):
    import main

    results = tmp_path / "results"
    results.mkdir()
    monkeypatch.chdir(tmp_path)
    if "--results_log_dir" not in argv:
        argv = [*argv, "--results_log_dir", str(results)]
    rc = main.main(argv)
    err = capsys.readouterr().err
    return rc, err, results


@pytest.mark.parametrize("argv", BAD_COMMAND_LINES + [["--results_log_dir", ""]], ids=" ".join)
def test_main_refuses_bad_command_lines_and_creates_nothing(argv, tmp_path, monkeypatch, capsys):
    rc, err, results = _run_main(argv, tmp_path, monkeypatch, capsys)
    assert rc == 2, err
    assert err.startswith("error: --") and "Traceback" not in err
    assert not any(results.iterdir()), "a run dir was created"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"], "something was created in the cwd"


def _main_source() -> str:
    import os

    from tests.conftest import ROOT

    with open(os.path.join(ROOT, "main.py")) as f:
        return f.read()


@pytest.mark.skipif("check_env_kwargs" not in _main_source() or "check_device" not in _main_source(),
                    reason="main.py does not call check_env_kwargs/check_device yet")
@pytest.mark.parametrize("argv", [["--env_kwargs", '{"no_such_kwarg": 1}'], ["--device", "cuda"]], ids=" ".join)
def test_main_refuses_unknown_env_kwargs_and_missing_gpu(argv, tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc, err, results = _run_main(argv, tmp_path, monkeypatch, capsys)
    assert rc == 2 and "Traceback" not in err and not any(results.iterdir())


def test_check_env_kwargs_follows_kwargs_up_the_class_hierarchy():
    check_env_kwargs("SparsePointEnv", {"goal_radius": 0.1, "max_episode_steps": 3})  # PointEnv's keyword
    with pytest.raises(ConfigError, match="SparsePointEnv does not take 'bogus'.*Accepted: goal_radius, max_episode_steps"):
        check_env_kwargs("SparsePointEnv", {"bogus": 1})


@pytest.mark.parametrize("content, needle", [
    (None, "no config.json"), ("{not json", "config.json is corrupt"), ("[1, 2]", "not the config of a run"),
    ('{"seed": 1}', "not the config of a run"), (b"\xff\xfe\x00", "cannot be read"),
])
def test_read_saved_config_refuses_bad_files_in_one_line(tmp_path, content, needle):
    from config.loader import read_saved_config

    if content is not None:
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(tmp_path / "config.json", mode) as f:
            f.write(content)
    with pytest.raises(ConfigError) as err:
        read_saved_config(str(tmp_path))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_read_saved_config_round_trip(tmp_path):
    from config.loader import read_saved_config

    cfg = resolve(ENV_TYPE, {"seed": ["5"]})
    with open(tmp_path / "config.json", "w") as f:
        json.dump(cfg.to_dict(), f)
    env_type, values = read_saved_config(str(tmp_path))
    assert env_type == ENV_TYPE and resolve(env_type, values=values).to_dict() == cfg.to_dict()
    values["policy_gamma"] = 7
    with pytest.raises(ConfigError, match=r"--policy_gamma: 7 is not in \[0, 1\] \(from config.json\)"):
        resolve(env_type, values=values, values_from="config.json")


def test_help_shows_ranges():
    from config.loader import describe_options

    text = describe_options()
    assert "--policy_gamma <float> [0, 1]" in text and "--lr_policy <float> > 0" in text


def test_integral_floats_are_integers_in_presets_and_saved_configs():
    cfg = resolve(ENV_TYPE, values={"num_frames": 1e4})
    assert cfg.num_frames == 10_000 and isinstance(cfg.num_frames, int)
    with pytest.raises(ConfigError, match="--num_frames: 1.5 is not an integer"):
        resolve(ENV_TYPE, values={"num_frames": 1.5})


@pytest.mark.parametrize("kwargs, needle", [
    ({"max_episode_steps": "10"}, "max_episode_steps of GridNavi takes an integer like its default 15, got '10'"),
    ({"max_episode_steps": 0}, "max_episode_steps of GridNavi must be >= 1, got 0"),
    ({"max_episode_steps": True}, "takes an integer"),
    ({"goal_reward": "1"}, "goal_reward of GridNavi takes a number"),
    ({"goal_reward": float("nan")}, "must be a finite number"),
])
def test_check_env_kwargs_checks_value_types_against_defaults(kwargs, needle):
    with pytest.raises(ConfigError) as err:
        check_env_kwargs("GridNavi", kwargs)
    assert needle in str(err.value)
    check_env_kwargs("GridNavi", {"goal_reward": 2, "max_episode_steps": 4})  # an int for a float default is fine
