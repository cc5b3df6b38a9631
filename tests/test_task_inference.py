"""Task-inference supervision (TI/TI++): warm-up switches the policy's input, the hard reset
keeps the task encoder, the VAE regresses the policy's task embedding."""
import torch

from config.loader import resolve
from metalearner import MetaLearner
from tests.conftest import tiny


def _learner(tmp_path, **kw):
    cfg = resolve("gridworld_varibad", values=tiny(method="ti", num_frames=512, task_num_warmup=2, **kw))
    return MetaLearner(cfg, str(tmp_path))


def _actor_out(learner, obs, latent, task):
    return learner.policy({"state": obs, "latent": latent, "task": task})[0]


def test_warmup_switches_input_from_task_to_latent(tmp_path):
    torch.manual_seed(0)
    learner = _learner(tmp_path)
    obs = torch.zeros(3, 3)
    lat_a, lat_b = torch.randn(3, 6), torch.randn(3, 6)
    task_a, task_b = torch.tensor([[2.0, 3.0]] * 3), torch.tensor([[4.0, 0.0]] * 3)
    learner.policy.use_task = True   # warm-up: conditions on the task, ignores the latent
    assert torch.equal(_actor_out(learner, obs, lat_a, task_a), _actor_out(learner, obs, lat_b, task_a))
    assert not torch.equal(_actor_out(learner, obs, lat_a, task_a), _actor_out(learner, obs, lat_a, task_b))
    learner.policy.use_task = False  # afterwards: the latent, not the task
    assert torch.equal(_actor_out(learner, obs, lat_a, task_a), _actor_out(learner, obs, lat_a, task_b))
    assert not torch.equal(_actor_out(learner, obs, lat_a, task_a), _actor_out(learner, obs, lat_b, task_a))


def test_training_uses_task_during_warmup_only(tmp_path):
    learner = _learner(tmp_path)
    seen = []
    original = learner.collect_rollout
    learner.collect_rollout = lambda: (seen.append(learner.policy.use_task), original())[1]
    learner.train()
    assert seen == [True, True, False, False]


def test_hard_reset_keeps_only_the_task_encoder(tmp_path):
    learner = _learner(tmp_path)
    learner.train()  # 4 updates, reset after the 2nd
    before = {k: v.clone() for k, v in learner.policy.state_dict().items()}
    learner._end_task_warmup()
    after = learner.policy.state_dict()
    for k in before:
        same = torch.equal(before[k], after[k])
        if k.startswith(("embedders.task", "normalisers.task")):
            assert same, k
        elif k.endswith("weight"):
            assert not same, k  # re-initialised
    assert len(learner.updater.optimiser.state) == 0  # fresh optimiser


def test_vae_task_decoder_regresses_the_policy_task_embedding(tmp_path):
    learner = _learner(tmp_path)
    vae = learner.vae
    assert vae.task_decoder.net[-1].out_features == 16
    tasks = torch.tensor([[2.0, 3.0], [4.0, 1.0]])
    with torch.no_grad():
        target = learner.policy.embed("task", tasks)
        lat = torch.randn(3, 2, vae.cfg.latent_dim)
        err = vae._task_error(lat, target)
        expected = (vae.task_decoder(lat) - target[None]).pow(2).mean(-1)
    assert torch.allclose(err, expected)
