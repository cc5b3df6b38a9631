"""Whole-loop tests: determinism, resume == uninterrupted, and run-dir contents."""
import json
import math
import os

import pytest
import torch

from metalearner import MetaLearner


def _params(learner):
    mods = [learner.policy] + (list(learner.vae.modules().values()) if learner.vae else [])
    return torch.cat([p.detach().flatten() for m in mods for p in m.parameters()])


def test_same_seed_same_numbers(tiny_cfg, tmp_path):
    runs = []
    for k in range(2):
        cfg = tiny_cfg("gridworld_varibad", num_frames=384)
        learner = MetaLearner(cfg, str(tmp_path / f"r{k}"))
        learner.train()
        runs.append((_params(learner), learner.last_eval["returns"]))
    assert torch.equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_different_seed_different_numbers(tiny_cfg, tmp_path):
    a = MetaLearner(tiny_cfg("gridworld_varibad", seed=1), str(tmp_path / "a"))
    b = MetaLearner(tiny_cfg("gridworld_varibad", seed=2), str(tmp_path / "b"))
    a.train()
    b.train()
    assert not torch.equal(_params(a), _params(b))


@pytest.mark.parametrize("overlap,inline_buffer", [(True, False), (False, False), (True, True)])
def test_resume_equals_uninterrupted(overlap, inline_buffer, tiny_cfg, tmp_path):
    """With default options (VAE buffer in incremental segments) and with the buffer inline."""
    kw = dict(checkpoint_vae_buffer=inline_buffer, eval_interval=1000, vae_update_overlap=overlap)
    full = MetaLearner(tiny_cfg("gridworld_varibad", num_frames=512, **kw), str(tmp_path / "full"))
    full.train()                                   # 4 updates
    part_dir = str(tmp_path / "part")
    part = MetaLearner(tiny_cfg("gridworld_varibad", num_frames=256, **kw), part_dir)
    part.train()                                   # 2 updates, checkpoint written at the end
    resumed = MetaLearner(tiny_cfg("gridworld_varibad", num_frames=512, **kw), part_dir, resume=True)
    assert resumed.iter == 2
    resumed.train()
    assert resumed.frames == full.frames
    assert torch.equal(_params(resumed), _params(full))


def test_run_dir_contents(tiny_cfg, tmp_path):
    learner = MetaLearner(tiny_cfg("gridworld_varibad", vis_interval=1), str(tmp_path))
    learner.train()
    files = set(os.listdir(tmp_path))
    assert {"config.json", "progress.csv", "checkpoints", "plots"} <= files
    assert any(f.startswith("events.out.tfevents") for f in files)
    assert json.load(open(tmp_path / "config.json"))["env_type"] == "gridworld_varibad"
    plots = os.listdir(tmp_path / "plots")
    assert "0_behaviour.png" in plots and "0_latents.png" in plots and "returns.png" in plots
    header = open(tmp_path / "progress.csv").readline().strip().split(",")
    assert {"return_episode_1", "return_episode_4", "frames"} <= set(header)


def test_behaviour_stats_reads_a_run_without_touching_it(tiny_cfg, tmp_path):
    """benchmarks/behaviour_stats.py: shares in [0, 1] per episode, the evaluation's returns,
    and the run dir is left exactly as it was."""
    from benchmarks.behaviour_stats import behaviour

    run = str(tmp_path / "run")
    MetaLearner(tiny_cfg("treasure_hunt_hyperx"), run).train()
    before = {os.path.join(d, f): os.path.getmtime(os.path.join(d, f)) for d, _, fs in os.walk(run) for f in fs}
    stats = behaviour(run, num_tasks=6, seed=0)
    after = {os.path.join(d, f): os.path.getmtime(os.path.join(d, f)) for d, _, fs in os.walk(run) for f in fs}
    assert before == after
    assert set(stats) == {"mountain_top", "success", "return"}
    assert all(0.0 <= v <= 1.0 for k in ("mountain_top", "success") for v in stats[k])
    assert len(stats["return"]) == 1 and stats["return"][0] < 0  # -5 per step off the treasure
    # smoke: the bonus-path diagnostic runs on the same run and gives positive RND errors
    from agent import load_run
    from benchmarks.treasure_bonus_paths import path_bonus

    loaded = load_run(run)
    bonus = loaded.bonus()
    assert all(v > 0 for p in ("climb", "circle") for v in path_bonus(loaded, bonus, p, num_tasks=3, seed=0))


def test_vae_buffer_segments_survive_a_kill_after_writing_and_fall_back(tiny_cfg, tmp_path):
    """Segments written by a run killed before its next checkpoint are ignored on resume; each
    trajectory is written once; the folder keeps what the kept checkpoints need."""
    import glob

    kw = dict(eval_interval=1000, save_interval=1, size_vae_buffer=6)
    full = MetaLearner(tiny_cfg("gridworld_varibad", num_frames=768, **kw), str(tmp_path / "full"))
    full.train()
    run = str(tmp_path / "part")
    part = MetaLearner(tiny_cfg("gridworld_varibad", num_frames=384, **kw), run)
    part.train()
    ahead = MetaLearner(tiny_cfg("gridworld_varibad", num_frames=768, **kw), run, resume=True)
    ahead.train_iteration()  # one more iteration, its new trajectories written, then killed before the checkpoint
    ahead.vae.wait()
    ahead.vae.buffer.save_segments(os.path.join(run, "checkpoints", "vae_buffer"))
    assert ahead.vae.buffer.total > part.vae.buffer.total
    del ahead
    segs = sorted(os.path.basename(p) for p in glob.glob(os.path.join(run, "checkpoints", "vae_buffer", "seg_*.pt")))
    ranges = [tuple(int(x) for x in s[4:-3].split("_")) for s in segs]
    assert all(a < b for a, b in ranges) and all(r1[1] <= r2[0] for r1, r2 in zip(ranges, ranges[1:]))  # written once
    resumed = MetaLearner(tiny_cfg("gridworld_varibad", num_frames=768, **kw), run, resume=True)
    resumed.train()
    assert torch.equal(_params(resumed), _params(full))


def test_pretrain_len_trains_the_vae_once_before_the_first_policy_update(tiny_cfg, tmp_path):
    """--pretrain_len k: k VAE-only steps at the first update (logged as vae_pretrain), the acting
    encoder caught up with them, and never again."""
    learner = MetaLearner(tiny_cfg("gridworld_varibad", pretrain_len=3), str(tmp_path / "run"))
    enc = lambda e: torch.cat([p.detach().flatten() for p in e.parameters()])  # noqa: E731
    before = enc(learner.vae.encoder)
    for _ in range(10):  # until the VAE buffer holds a finished trajectory
        learner.collect_rollout()
        stats = learner.update()
        if learner.vae_pretrained:
            break
        assert "vae_pretrain" not in stats
    assert learner.vae_pretrained and math.isfinite(stats["vae_pretrain"]["sum"])
    assert not torch.equal(enc(learner.vae.acting_encoder), before)  # the policy acts with the pretrained one
    learner.collect_rollout()
    assert "vae_pretrain" not in learner.update()
