"""Bad input gets a clear message and exit status 2, no traceback, nothing written."""
import os
import subprocess
import sys

import pytest

from config.loader import ConfigError, resolve, split_cli, parse_value
from config.schema import OPTIONS
from tests.conftest import ROOT


def run(*args, cwd=None):
    return subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=120)


@pytest.mark.parametrize("args, needle", [
    (["--env-type", "gridworld_varibadd"], "Did you mean: gridworld_varibad"),
    (["--num_framez", "10"], "Did you mean: num_frames"),
    (["--num_frames", "ten"], "is not an integer"),
    (["--num_frames", "1.5"], "is not an integer"),
    (["--pass_state_to_policy", "maybe"], "true/false"),
    (["--policy", "sac"], "not one of"),
    (["--resume", "/nonexistent/run"], "no config.json"),
    (["stray"], "unexpected argument"),
])
def test_bad_cli_input_is_a_clean_error(args, needle, tmp_path):
    out = run(*args, "--results_log_dir", str(tmp_path)) if args[0] != "--resume" else run(*args)
    assert out.returncode == 2
    assert needle in out.stderr
    assert "Traceback" not in out.stderr
    assert not any(tmp_path.iterdir())  # no run dir was created


def test_help_and_list():
    out = run("--help")
    assert out.returncode == 0 and "--kl_weight" in out.stdout and "default" in out.stdout
    out = run("--list-env-types")
    assert out.returncode == 0 and "gridworld_varibad" in out.stdout.split()


def test_value_parsing():
    assert parse_value(OPTIONS["num_frames"], ["1e7"]) == 10_000_000
    assert parse_value(OPTIONS["pass_state_to_policy"], ["0"]) is False
    assert parse_value(OPTIONS["pass_state_to_policy"], ["True"]) is True
    assert parse_value(OPTIONS["policy_layers"], ["64", "32"]) == [64, 32]
    assert parse_value(OPTIONS["tbptt_stepsize"], ["none"]) is None
    assert parse_value(OPTIONS["env_kwargs"], ['{"a": 1}']) == {"a": 1}
    assert split_cli(["--a=1", "--b", "x", "y"]) == {"a": ["1"], "b": ["x", "y"]}


def test_presets_extend_and_cli_wins():
    cfg = resolve("gridworld_rl2", {"latent_dim": ["7"]})
    assert cfg.env_name == "GridNavi" and cfg.disable_decoder and cfg.latent_dim == 7
    assert cfg.max_rollouts_per_task == 4  # inherited from gridworld_varibad
    with pytest.raises(ConfigError, match="must be >= 1"):
        resolve("gridworld_varibad", {"num_processes": ["0"]})


def test_resume_refuses_config_changes(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    out = run("--resume", str(tmp_path), "--latent_dim", "8")  # (learning rates may change: NaN recovery)
    assert out.returncode == 2 and "keeps its config" in out.stderr


def test_method_presets_and_refusals():
    cfg = resolve("gridworld_varibad", {"method": ["splagger"], "latent_dim": ["8"]})
    assert cfg.use_hypernet and cfg.encoder_skip_type == "split" and cfg.latent_dim == 8  # CLI beats method
    assert resolve("gridworld_varibad", {"method": ["bi_pp_hn"]}).ti_target == "base_net"
    with pytest.raises(ConfigError, match="only applies with an encoder trained by the RL loss"):
        resolve("gridworld_varibad", {"ppo_minibatch_by_env": ["true"]})
    with pytest.raises(ConfigError, match="needs --pass_task_to_policy"):
        resolve("gridworld_varibad", {"pass_task_as_onehot_id": ["true"]})
    with pytest.raises(ConfigError, match="needs a hypernetwork"):
        resolve("gridworld_varibad", {"method": ["ti"], "ti_target": ["base_net"]})
    with pytest.raises(ConfigError, match="Did you mean: splagger"):
        resolve("gridworld_varibad", {"method": ["splager"]})
