"""Task-inference supervision (TI/TI++): warm-up switches the policy's input, the hard reset
keeps the task encoder, the VAE regresses the policy's task embedding."""
import torch

from config.loader import resolve
from components.task_inference import TaskInference
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
    learner.component(TaskInference).end_warmup(learner)
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


def test_bi_pp_hn_regresses_the_generated_base_net_parameters(tmp_path):
    cfg = resolve("gridworld_varibad", values=tiny(method="bi_pp_hn", num_frames=512, task_num_warmup=2))
    learner = MetaLearner(cfg, str(tmp_path))
    body = learner.policy.body
    tasks = torch.tensor([[2.0, 3.0], [4.0, 1.0]])
    with torch.no_grad():
        target = learner.vae.task_target_fn(tasks)
        expected = body.generated_params(None, learner.policy.embed("task", tasks))
    # actor + critic, every generated layer's W and b, e.g. 2 hidden layers of the tiny policy
    n = sum(p.numel() for p in body.parameters() if p.dim() == 2 and p.shape[1] == body.cond_dim) // body.cond_dim
    assert target.shape == (2, n) and torch.equal(target, expected)
    assert learner.vae.task_decoder.net[-1].out_features == n
    learner.train()  # 4 updates through the warm-up and past it
    assert not learner.policy.use_task


def _rnn_ti(tmp_path, **kw):
    cfg = resolve("gridworld_varibad", values=tiny(
        method="rnn_hn", num_frames=512, task_num_warmup=2, ti_coeff=1.0, pass_task_to_policy=True,
        policy_task_embedding_dim=8, policy_latent_embedding_dim=8, **kw))
    return MetaLearner(cfg, str(tmp_path))


def test_rnn_ti_loss_known_answer_and_stop_gradient(tmp_path):
    learner = _rnn_ti(tmp_path)
    policy = learner.policy
    mb = {"latent": torch.randn(5, learner.cfg.latent_dim * 2, requires_grad=True),
          "task": torch.tensor([[2.0, 3.0]] * 5)}
    loss = learner.component(TaskInference).policy_loss(mb)
    expected = (policy.embed("latent", mb["latent"]) - policy.embed("task", mb["task"])).pow(2).mean()
    assert torch.allclose(loss, expected)
    loss.backward()
    assert mb["latent"].grad.abs().sum() > 0  # reaches the encoder's output
    assert all(p.grad is None for p in policy.embedders["task"].parameters())  # the target is stop-gradient


def test_rnn_ti_loss_is_part_of_every_policy_update(tmp_path):
    learner = _rnn_ti(tmp_path)
    seen, original = [], learner.update
    learner.update = lambda: (lambda st: (seen.append(st["policy"]), st)[1])(original())
    learner.train()
    assert len(seen) == 4 and all(s["aux_loss"] > 0 for s in seen)
    assert not learner.policy.use_task


def test_rnn_bi_pp_hn_compares_generated_parameters(tmp_path):
    learner = _rnn_ti(tmp_path, ti_target="base_net")
    policy = learner.policy
    mb = {"latent": torch.randn(4, learner.cfg.latent_dim * 2), "task": torch.tensor([[1.0, 4.0]] * 4)}
    gen = policy.body.generated_params
    expected = (gen(None, policy.embed("latent", mb["latent"])) - gen(None, policy.embed("task", mb["task"]))).pow(2)
    assert torch.allclose(learner.component(TaskInference).policy_loss(mb), expected.mean())


def test_onehot_task_ids_for_the_policy(tmp_path):
    cfg = resolve("gridworld_varibad", values=tiny(method="multi_hn", num_frames=256, pass_task_as_onehot_id=True))
    learner = MetaLearner(cfg, str(tmp_path))
    inputs = learner.agent.inputs(learner.env, learner.obs)
    env = learner.env.env
    ids = env.cell_id(env.get_task())
    assert inputs["task"].shape == (cfg.num_processes, env.num_tasks)
    assert torch.equal(inputs["task"].argmax(-1), ids) and torch.equal(inputs["task"].sum(-1), torch.ones(len(ids)))
    learner.train()


def test_onehot_task_ids_refused_without_discrete_tasks(tmp_path):
    import pytest
    cfg = resolve("pointrobot_varibad", values=tiny(method="multi_hn", num_frames=256, pass_task_as_onehot_id=True))
    with pytest.raises(ValueError, match="no finite set of tasks"):
        MetaLearner(cfg, str(tmp_path))


def test_task_ids_cover_every_task_exactly_once():
    from environments import make_env
    for name, kw in (("GridNavi", {}), ("RoomNavi", {}), ("TMaze-Agree", {})):
        env = make_env(name, num_envs=2, seed=0, **kw)
        tasks = env.sample_tasks(3000)
        ids = env.task_to_id(tasks)
        distinct = {tuple(t) for t in tasks.tolist()}
        assert ids.min() >= 0 and ids.max() < env.num_tasks, name
        assert ids.unique().numel() == len(distinct), name  # one id per distinct task
