"""ReId's finite training tasks and dream envs wired into the VariBAD loop (components/dreams.py,
components/pretrained.py): the known-answer pieces are tested in test_dreams.py/test_task_pool.py."""
import pytest
import torch

from config.loader import resolve
from tests.conftest import tiny
from trainers import build_trainer

DREAM = dict(num_frames=768, num_processes=6, num_dream_envs=2, delay_dream=2, update_kde_interval=1, env_num_goals=10,
             env_num_train_goals=6, env_num_eval_goals=3, env_kwargs={"max_episode_steps": 10}, eval_interval=2,
             checkpoint_vae_buffer=True)


def _trainer(tmp_path, name="run", **extra):
    return build_trainer(resolve("pointrobot_dream", values=tiny(**{**DREAM, **extra})), str(tmp_path / name))


def _dreams(trainer):
    from components.dreams import DreamEnvs

    return trainer.component(DreamEnvs)


def test_evaluation_on_each_task_set_draws_only_its_tasks(tmp_path):
    import evaluation

    trainer = _trainer(tmp_path)
    pool = trainer.env.env.inner  # DreamEnv -> TaskPoolEnv
    for name, allowed in (("train", pool.train_tasks), ("eval", pool.eval_tasks)):
        seen: list = []
        evaluation.evaluate(trainer.agent, seed=3, num_envs=8, task_set=name,
                            on_step=lambda info, ep, live, seen=seen: seen.append(info["task"]))
        tasks = torch.cat(seen).unique(dim=0)
        assert all(bool((allowed - t).abs().amax(1).lt(1e-6).any()) for t in tasks), name
    assert not bool((pool.train_tasks[:, None] - pool.eval_tasks[None]).abs().amax(-1).lt(1e-6).any())


def test_dreams_switch_on_at_delay_dream_and_stay_out_of_the_vae_buffer(tmp_path):
    trainer = _trainer(tmp_path)
    dreams = _dreams(trainer)
    stored, original = [], trainer.vae.buffer._finish

    def finish(done):
        keep = done & trainer.vae.buffer.store_mask
        stored.append(keep.nonzero().flatten().tolist())
        original(done)

    trainer.vae.buffer._finish = finish
    masks = []
    trainer.collect_rollout = (lambda f: lambda: (masks.append((trainer.iter, dreams.dream.dream_mask.clone())), f())[1])(
        trainer.collect_rollout)
    trainer.train()
    for it, mask in masks:  # after delay_dream = 2 updates, from the third rollout on
        assert bool(mask.any()) == (it >= 2), it
    assert all(i < 4 for ids in stored for i in ids)  # copies 4, 5 dream: never stored


def test_dream_reward_is_the_decoder_at_the_copy_latent(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.train()
    dreams = _dreams(trainer)
    env = dreams.dream
    mask = env.dream_mask
    prev = env.last_obs.clone()
    actions = torch.rand(env.num_envs, 2) * 0.2 - 0.1
    obs, reward, term, trunc, info = env.step(actions)
    done = (term | trunc)[mask].float()[:, None]
    flag = lambda o, d: torch.cat([o, d], 1)  # noqa: E731  (the BAMDP's done flag, R > 1)
    with torch.no_grad():
        expected = dreams.decoder(env.latents[mask], flag(obs[mask], done), flag(prev[mask], torch.zeros_like(done)),
                                  actions[mask]).reshape(-1)
    assert torch.allclose(reward[mask], expected, atol=1e-6)
    assert torch.equal(reward[~mask], info["real_reward"][~mask])


def test_freeze_vae_leaves_its_parameters_unchanged(tmp_path):
    trainer = _trainer(tmp_path, freeze_vae=True)
    before = [p.detach().clone() for p in trainer.vae.parameters()]
    trainer.train()
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.vae.parameters()))
    assert trainer.vae.last_stats  # the loss is still computed and logged


def test_resume_with_dream_copies_equals_uninterrupted(tmp_path):
    full = _trainer(tmp_path, "full")
    full.train()
    part = _trainer(tmp_path, "part", num_frames=384)
    part.train()
    resumed = build_trainer(resolve("pointrobot_dream", values=tiny(**DREAM)), str(tmp_path / "part"), resume=True)
    resumed.train()
    params = lambda t: torch.cat([p.detach().flatten() for p in list(t.policy.parameters()) + t.vae.parameters()])  # noqa: E731
    assert torch.equal(params(resumed), params(full))
    assert resumed.last_eval["sets"]["eval"]["returns"] == full.last_eval["sets"]["eval"]["returns"]


def test_saved_modules_are_loaded_from_another_run(tmp_path):
    source = _trainer(tmp_path, "source")
    source.train()
    loaded = _trainer(tmp_path, "target", saved_policy=str(tmp_path / "source"),
                      saved_reward_decoder=str(tmp_path / "source"))
    assert all(torch.equal(a, b) for a, b in zip(loaded.policy.state_dict().values(), source.policy.state_dict().values()))
    assert torch.equal(loaded.vae.reward_decoder.state_dict()["fc_out.weight"] if "fc_out.weight" in
                       loaded.vae.reward_decoder.state_dict() else next(iter(loaded.vae.reward_decoder.parameters())),
                       source.vae.reward_decoder.state_dict()["fc_out.weight"] if "fc_out.weight" in
                       source.vae.reward_decoder.state_dict() else next(iter(source.vae.reward_decoder.parameters())))
    with pytest.raises(ValueError, match="saved_task_decoder"):
        _trainer(tmp_path, "bad", saved_task_decoder=str(tmp_path / "source"))


def test_the_seeds_command_line_builds_a_pool_of_1000_with_20_training_tasks(tmp_path):
    cfg = resolve("pointrobot_varibad", values=tiny(env_num_train_goals=20, num_dream_envs=1, delay_dream=0,
                                                    env_kwargs={"max_episode_steps": 10}))
    trainer = build_trainer(cfg, str(tmp_path / "run"))
    pool = trainer.env.env.inner
    assert pool.num_goals == 1000 and len(pool.train_tasks) == 20 and pool.eval_tasks is None
    trainer.train()
    assert _dreams(trainer).dream.dream_mask.tolist() == [False, False, False, True]


def test_dream_reward_picture_for_the_point_robot(tmp_path):
    import os

    trainer = _trainer(tmp_path, vis_interval=1000)  # plots at the last iteration only
    trainer.train()
    plots = os.listdir(tmp_path / "run" / "plots")
    assert f"{trainer.iter}_dream_rewards.png" in plots and "0_dream_rewards.png" not in plots  # none before dreams


def test_dynamics_tasks_dream_with_the_state_decoder_or_are_refused(tmp_path):
    hopper = dict(num_frames=256, num_processes=4, num_dream_envs=1, delay_dream=0, update_kde_interval=1,
                  env_kwargs={"max_episode_steps": 10}, eval_interval=2)
    from config.errors import ConfigError

    with pytest.raises(ConfigError, match="decode_state"):
        resolve("hopper_varibad", values=tiny(**hopper, decode_state=False))
    trainer = build_trainer(resolve("hopper_varibad", values=tiny(**hopper, decode_state=True)), str(tmp_path / "b"))
    trainer.train()
    dreams = _dreams(trainer)
    assert dreams.dynamics and dreams.dream.state_fn is not None and bool(dreams.dream.dream_mask.any())


def test_kde_from_train_encodes_a_scripted_expert_episode_per_training_task(tmp_path):
    """Without running latents (kde_from_running_latents false) the first fit uses one latent per
    training task: the encoder's posterior after the point robot's expert episode on that task."""
    trainer = _trainer(tmp_path, kde_from_running_latents=False, delay_dream=0, num_frames=192)
    dreams = _dreams(trainer)
    dreams.per_task.add = (lambda add: lambda *a, **k: (seen.append((a, k)), add(*a, **k))[1])(dreams.per_task.add)
    seen = []
    trainer.train()
    oracle_adds = [k["keys"].tolist() for a, k in seen if a[0].shape[0] == 6 and k.get("keys") is not None
                   and k["keys"].tolist() == list(range(6))]
    assert oracle_adds, "the fit did not add one scripted-episode latent per training task"
    assert len(dreams.per_task) == 6 and bool(dreams.dream.dream_mask.any())
    assert dreams._oracle_latents(seed=0).shape == (6, trainer.cfg.latent_dim)
