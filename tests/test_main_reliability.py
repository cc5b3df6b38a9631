"""main.py end to end: a run dir killed during start-up resumes from scratch; a second process
on a run dir is refused; config.json records the device used; resuming a finished run is quiet."""
import json
import os

import torch

from main import main
from utils.checkpoint import has_checkpoint
from utils.lock import RunLock

TINY = ["--num_frames", "256", "--num_processes", "4", "--policy_num_steps", "32", "--precollect_len", "0",
        "--ppo_num_minibatch", "2", "--vae_batch_num_trajs", "2", "--size_vae_buffer", "50", "--num_vae_updates", "1",
        "--eval_interval", "1", "--vis_interval", "1000", "--num_eval_envs", "2", "--progress_bar", "false",
        "--encoder_gru_hidden_size", "16", "--latent_dim", "3", "--policy_layers", "16"]


def _run_dir(root):
    (env_dir,) = os.listdir(root)
    (run,) = os.listdir(os.path.join(root, env_dir))
    return os.path.join(root, env_dir, run)


def test_new_run_records_the_device_used_and_a_killed_start_up_resumes(tmp_path, capsys):
    assert main(TINY + ["--results_log_dir", str(tmp_path)]) == 0
    run = _run_dir(tmp_path)
    used = "cuda" if torch.cuda.is_available() else "cpu"  # the default "auto", resolved
    assert json.load(open(os.path.join(run, "config.json")))["device"] == used
    # a run killed during start-up: config.json written, nothing else
    fresh = tmp_path / "killed"
    fresh.mkdir()
    cfg = json.load(open(os.path.join(run, "config.json")))
    json.dump(cfg, open(fresh / "config.json", "w"))
    assert main(["--resume", str(fresh)]) == 0
    assert has_checkpoint(str(fresh))
    rows = open(fresh / "progress.csv").read().strip().splitlines()
    assert len(rows) == 1 + 3  # header + iterations 0, 1, 2, once each
    capsys.readouterr()
    assert main(["--resume", run]) == 0  # already finished: nothing to do, no empty result line
    assert "final evaluation, return per episode: \n" not in capsys.readouterr().out


def test_second_process_on_a_run_dir_is_refused(tmp_path, capsys):
    assert main(TINY + ["--results_log_dir", str(tmp_path)]) == 0
    run = _run_dir(tmp_path)
    with RunLock(run):
        assert main(["--resume", run, "--num_frames", "384"]) == 2
    assert "lock" in capsys.readouterr().err.lower()


def test_resume_may_lower_learning_rates_and_records_it(tmp_path):
    import torch

    from agent import load_run
    from utils.checkpoint import load_checkpoint

    assert main(TINY + ["--results_log_dir", str(tmp_path), "--lr_policy", "1e-3"]) == 0
    run = _run_dir(tmp_path)
    assert main(["--resume", run, "--num_frames", "384", "--lr_policy", "1e-4", "--lr_vae", "2e-4"]) == 0
    state = load_checkpoint(run, log=None)
    assert [g["lr"] for g in state["updater"]["optimiser"]["param_groups"]] == [1e-4]
    assert [g["lr"] for g in state["vae"]["optimiser"]["param_groups"]] == [2e-4]
    assert json.load(open(os.path.join(run, "config.json")))["lr_policy"] == 1e-4
    (line,) = open(os.path.join(run, "resumes.jsonl")).read().splitlines()
    assert json.loads(line)["overrides"] == {"num_frames": 384, "lr_policy": 1e-4, "lr_vae": 2e-4}
    assert torch.isfinite(torch.cat([p.flatten() for p in load_run(run).agent.policy.parameters()])).all()


def test_a_users_env_is_checked_on_first_use():
    """An env registered outside environments/ that breaks the batched contract fails at once with
    a message saying what is wrong."""
    import pytest
    import torch
    from gymnasium import spaces

    from environments.base import MetaEnv
    from environments.checker import EnvContractError
    from environments.registry import ENVS, make_env

    class Broken(MetaEnv):  # rewards of shape [N, 1] instead of [N]
        observation_space = spaces.Box(-1, 1, (2,))
        action_space = spaces.Discrete(2)
        max_episode_steps, task_dim = 5, 1

        def sample_tasks(self, n):
            return torch.rand(n, 1, generator=self.generator)

        def set_task(self, mask, tasks):
            self.task = getattr(self, "task", torch.zeros(self.num_envs, 1))
            self.task[mask] = tasks

        def _reset_state(self, mask):
            pass

        def _obs(self):
            return torch.zeros(self.num_envs, 2)

        def get_task(self):
            return self.task

        def step(self, actions):
            return self._obs(), torch.zeros(self.num_envs, 1), torch.zeros(self.num_envs, dtype=torch.bool), \
                self._advance_time(), {}

    if "BrokenUserEnv" not in ENVS:
        ENVS.register("BrokenUserEnv")(Broken)
    with pytest.raises(EnvContractError, match="reward"):
        make_env("BrokenUserEnv", 4)


def test_a_combination_the_models_refuse_is_a_clean_error_and_leaves_no_run_dir(tmp_path, capsys):
    # the point robot has no exact belief to give the policy: found when the policy is built
    assert main(TINY + ["--env-type", "pointrobot_varibad", "--pass_belief_to_policy", "true",
                        "--results_log_dir", str(tmp_path)]) == 2
    assert "no exact belief" in capsys.readouterr().err
    assert not any(os.scandir(tmp_path)) or not any(os.scandir(next(os.scandir(tmp_path)).path))
