"""The trainer plug-in API: callbacks see every evaluation and can stop a run; a stopped or
Ctrl-C'd run ends at an iteration boundary with a checkpoint that resume continues; a run's
checkpoint loads into an agent without any trainer."""
import os
import signal

import pytest
import torch

from trainers import TRAINERS, build_trainer, trainer_class
from trainers.base import Interrupted, Trainer


def _params(trainer):
    return torch.cat([p.detach().flatten() for p in trainer.agent.policy.parameters()]
                     + [p.detach().flatten() for p in trainer.agent.vae.parameters()])


def test_registry_names_the_varibad_loop():
    assert "varibad" in TRAINERS and issubclass(trainer_class("varibad"), Trainer)
    with pytest.raises(KeyError, match="unknown trainer"):
        trainer_class("nope")


def test_callback_sees_every_evaluation(tiny_cfg, tmp_path):
    seen = []
    trainer = build_trainer(tiny_cfg("gridworld_varibad", num_frames=512, eval_interval=1), str(tmp_path))
    trainer.train(callbacks=[lambda t, m: seen.append((m["iteration"], m["frames"], tuple(m["returns"])))])
    assert [s[0] for s in seen] == [0, 1, 2, 3, 4]
    assert [s[1] for s in seen] == [0, 128, 256, 384, 512]
    assert seen[-1][2] == tuple(trainer.last_eval["returns"])


def test_stop_request_ends_with_a_checkpoint_that_resume_continues(tiny_cfg, tmp_path):
    kw = dict(num_frames=512, eval_interval=1, checkpoint_vae_buffer=True)
    full = build_trainer(tiny_cfg("gridworld_varibad", **kw), str(tmp_path / "full"))
    full.train()

    class StopAt:
        def on_evaluation(self, trainer, metrics):
            return metrics["iteration"] == 2

    run = str(tmp_path / "stopped")
    stopped = build_trainer(tiny_cfg("gridworld_varibad", **kw), run)
    stopped.train(callbacks=[StopAt()])
    assert stopped.iter == 2 and stopped.frames == 256
    resumed = build_trainer(tiny_cfg("gridworld_varibad", **kw), run, resume=True)
    assert resumed.iter == 2 and resumed.frames == 256
    resumed.train()
    assert resumed.iter == 4 and resumed.frames == 512
    assert torch.equal(_params(resumed), _params(full))
    assert resumed.last_eval["returns"] == full.last_eval["returns"]


def test_ctrl_c_finishes_the_iteration_saves_and_resumes(tiny_cfg, tmp_path):
    """SIGINT mid-run: the iteration in progress completes (frames stay a multiple of the
    rollout size), a checkpoint is written, Interrupted is raised; resume finishes the run."""
    kw = dict(num_frames=512, eval_interval=1, checkpoint_vae_buffer=True)
    run = str(tmp_path / "run")
    trainer = build_trainer(tiny_cfg("gridworld_varibad", **kw), run)
    original = trainer.collect_rollout

    def rollout_with_ctrl_c():
        if trainer.iter == 1:
            os.kill(os.getpid(), signal.SIGINT)  # arrives in the middle of iteration 2
        original()

    trainer.collect_rollout = rollout_with_ctrl_c
    with pytest.raises(Interrupted):
        trainer.train()
    assert trainer.iter == 2 and trainer.frames == 256
    resumed = build_trainer(tiny_cfg("gridworld_varibad", **kw), run, resume=True)
    assert resumed.frames == 256
    resumed.train()
    assert resumed.frames == 512


def test_checkpoint_loads_into_an_agent_without_a_trainer(tiny_cfg, tmp_path):
    """load_run builds no trainer and no run dir; its agent evaluates exactly as the trainer did."""
    from agent import load_run
    import evaluation

    run = str(tmp_path / "run")
    trainer = build_trainer(tiny_cfg("treasure_hunt_hyperx", num_frames=256), run)
    trainer.train()
    before = sorted(os.listdir(run))
    loaded = load_run(run)
    assert sorted(os.listdir(run)) == before and len(os.listdir(tmp_path)) == 1
    res = evaluation.evaluate(loaded.agent, seed=loaded.cfg.seed * 42 + trainer.iter, bonus=loaded.bonus())
    assert res["returns"] == trainer.last_eval["returns"]
    assert res["return_bonus_hyperstate"] == trainer.last_eval["return_bonus_hyperstate"]


def test_nan_on_the_vae_thread_stops_the_run_and_leaves_only_clean_checkpoints(tiny_cfg, tmp_path):
    """A NaN in the VAE loss (computed on the overlapped thread) is named in the message; no
    checkpoint with a non-finite tensor is written, and the last clean one resumes."""
    from trainers.base import NonFiniteError
    from utils.checkpoint import load_checkpoint

    run = str(tmp_path / "run")
    trainer = build_trainer(tiny_cfg("gridworld_varibad", num_frames=768, save_interval=1), run)
    vae, original = trainer.vae, trainer.vae.loss
    calls = []

    def poisoned(batch):
        calls.append(1)
        loss, stats = original(batch)
        if len(calls) >= 3:  # from the third VAE step on: NaN parameters after the step
            loss = loss * float("nan")
            stats = {**stats, "sum": loss.detach()}
        return loss, stats

    vae.loss = poisoned
    with pytest.raises(NonFiniteError, match="vae/"):
        trainer.train()
    state = load_checkpoint(run, log=None)
    params = torch.cat([v.flatten() for v in state["vae"]["modules"]["encoder"].values()])
    assert torch.isfinite(params).all() and state["iter"] < trainer.iter
    resumed = build_trainer(tiny_cfg("gridworld_varibad", num_frames=768, save_interval=1), run, resume=True)
    assert resumed.iter == state["iter"]
