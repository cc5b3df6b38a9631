"""HyperZero: dataset format and split, the generated networks, the losses, the pipeline."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hyperzero import dataset as ds
from models.hyperzero import APPROXIMATORS, HyperZero, build_approximator, losses


# ----------------------------------------------------------------------------- dataset
def _fake_rollouts(contexts, e=2, t=3, obs=4, act=2, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for m, length in contexts:
        arrays = {"state": rng.normal(size=(e, t, obs)), "action": rng.uniform(-1, 1, (e, t, act)),
                  "next_state": rng.normal(size=(e, t, obs)), "reward": rng.uniform(size=(e, t, 1)),
                  "discount": np.ones((e, t, 1)), "value": rng.normal(size=(e, t, 1))}
        out.append(ds.ContextRollouts(m, length, arrays))
    return out


def test_dataset_round_trip(tmp_path):
    rolls = _fake_rollouts([(1.0, 0.5), (-2.0, 0.4), (3.5, 0.5)])
    ds.save_dataset(str(tmp_path), rolls, "ContextualCheetahRun", gamma=0.99)
    meta, back = ds.load_dataset(str(tmp_path))
    assert meta["gamma"] == 0.99 and meta["obs_dim"] == 4 and meta["act_dim"] == 2 and len(back) == 3
    assert sorted(os.listdir(tmp_path)) == ["context_000.npz", "context_001.npz", "context_002.npz", "meta.json"]
    for a, b in zip(rolls, back):
        assert (a.margin, a.length) == (b.margin, b.length)
        for k in ds.ARRAYS:
            np.testing.assert_array_equal(b.arrays[k], a.arrays[k].astype(np.float32))
    assert meta["contexts"][1]["expert_return"] == pytest.approx(rolls[1].arrays["reward"].sum((1, 2)).mean(), rel=1e-6)
    with np.load(tmp_path / "context_000.npz", allow_pickle=False) as z:  # plain arrays, no pickle
        assert set(z.files) == set(ds.ARRAYS) | {"reward_param", "dynamics_param"}
    flat = ds.flatten(back, "rew_dyn")
    assert flat["state"].shape == (18, 4) and flat["context"].shape == (18, 2)
    np.testing.assert_array_equal(flat["context"][6].numpy(), np.float32([-2.0, 0.4]))


def test_split_disjoint_by_unique_context(tmp_path):
    grid = [(m, length) for m in (1.0, 2.0, 3.0, 4.0, 5.0) for length in (0.4, 0.5, 0.6, 0.7)]
    rolls = _fake_rollouts(grid, e=1, t=1)
    for inp, n_unique in (("rew", 5), ("dyn", 4), ("rew_dyn", 20)):
        split = ds.split_contexts(rolls, inp, seed=2, test_fraction=0.15)
        train, test = {tuple(k) for k in split["train"]}, {tuple(k) for k in split["test"]}
        assert not train & test and len(train | test) == n_unique
        assert len(test) == max(1, round(0.15 * n_unique))
        tr, te = ds.select(rolls, split, "train"), ds.select(rolls, split, "test")
        assert len(tr) + len(te) == 20
        assert not {r.key(inp) for r in tr} & {r.key(inp) for r in te}
        assert ds.split_contexts(rolls, inp, seed=2) == split  # seeded
    path = ds.write_split(str(tmp_path), split)
    assert os.path.basename(path) == "split-rew_dyn-seed-2.json"
    assert ds.read_split(str(tmp_path), "rew_dyn", 2) == json.loads(json.dumps(split))
    assert ds.split_contexts(rolls, "rew_dyn", seed=3) != split


# ----------------------------------------------------------------------------- model
def test_generated_weights_per_sample_equal_explicit_loop():
    torch.manual_seed(0)
    model = HyperZero(context_dim=2, obs_dim=5, act_dim=3, hidden=8, embed_widths=(8, 16, 32))
    ctx, s, a = torch.randn(4, 2), torch.randn(4, 5), torch.rand(4, 3) * 2 - 1
    params = model.generate(ctx)
    act, q = model.policy(params, s), model.q(params, s, a)
    for i in range(4):
        z = model.embedding(ctx[i:i + 1])[0]
        heads = model.pi_heads
        w1 = (heads.w_heads[0].weight @ z + heads.w_heads[0].bias).view(8, 5)
        b1 = heads.b_heads[0].weight @ z + heads.b_heads[0].bias
        w2 = (heads.w_heads[1].weight @ z + heads.w_heads[1].bias).view(3, 8)
        b2 = heads.b_heads[1].weight @ z + heads.b_heads[1].bias
        torch.testing.assert_close(act[i], torch.tanh(w2 @ F.relu(w1 @ s[i] + b1) + b2))
        qh = model.q_heads
        v1 = (qh.w_heads[0].weight @ z + qh.w_heads[0].bias).view(8, 8)
        c1 = qh.b_heads[0].weight @ z + qh.b_heads[0].bias
        v2 = (qh.w_heads[1].weight @ z + qh.w_heads[1].bias).view(1, 8)
        c2 = qh.b_heads[1].weight @ z + qh.b_heads[1].bias
        torch.testing.assert_close(q[i], v2 @ F.relu(v1 @ torch.cat([s[i], a[i]]) + c1) + c2)
    # different contexts -> different policies for the same state
    same_s = s[:1].expand(4, 5)
    out = model.act(ctx, same_s)
    assert (out[0] - out[1]).abs().max() > 1e-6


def test_sizes_match_the_paper():
    model, _ = build_approximator("hyperzero", 1, 17, 6)  # cheetah: ~3.6M, 0.39M of it the embedding
    n = sum(p.numel() for p in model.parameters())
    emb = sum(p.numel() for p in model.embedding.parameters())
    assert 3.5e6 < n < 3.7e6 and 0.38e6 < emb < 0.40e6
    head = model.pi_heads.w_heads[0].weight
    assert head.abs().max() <= 0.05 and model.pi_heads.w_heads[1].weight.abs().max() <= 0.008


class _Stub(torch.nn.Module):
    """Q(s, a) = sum(s) * scale, pi(s) = 0: a hand-checkable TD loss."""

    has_q = True

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(1.0))
        self.bias = torch.nn.Parameter(torch.zeros(1))

    def generate(self, context):
        return None

    def policy(self, params, state):
        return self.bias.expand(state.shape[0], 1)

    def q(self, params, state, action):
        return self.scale * state.sum(-1, keepdim=True)


def test_td_loss_known_case():
    batch = {"context": torch.zeros(2, 1), "state": torch.tensor([[2.0], [0.0]]), "action": torch.zeros(2, 1),
             "next_state": torch.tensor([[1.0], [3.0]]), "reward": torch.tensor([[0.5], [0.5]]),
             "discount": torch.tensor([[1.0], [0.0]]), "value": torch.tensor([[1.0], [2.0]])}
    model = _Stub()
    out = losses(model, batch, gamma=0.9, use_td=True)
    # targets: 0.5 + 0.9 * 1 * 1 = 1.4 and 0.5 + 0 = 0.5 -> ((1 - 1.4)^2 + (2 - 0.5)^2) / 2
    assert out["td"].item() == pytest.approx(1.205)
    # value loss: Q(s, a*) = [2, 0] vs Q* = [1, 2] -> (1 + 4) / 2
    assert out["value"].item() == pytest.approx(2.5)
    assert out["total"].item() == pytest.approx(0.0 + 0.01 * 2.5 + 0.01 * 1.205)
    out["td"].backward()
    # d td / d scale = mean(2 (target - Q*) * gamma d s'_sum) = (2 * 0.4 * 0.9 * 1 + 0) / 2 = 0.36
    assert model.scale.grad.item() == pytest.approx(0.36)
    assert model.bias.grad is None  # pi(s') under no_grad


@pytest.mark.parametrize("name", APPROXIMATORS)
def test_every_approximator_trains_down(name):
    torch.manual_seed(0)
    model, use_td = build_approximator(name, 1, 3, 2, hidden=16, embed_widths=(8, 8, 16))
    n = 64
    ctx = torch.rand(n, 1) * 2 - 1
    s = torch.randn(n, 3)
    batch = {"context": ctx, "state": s, "action": torch.tanh(ctx * s[:, :2]), "next_state": torch.randn(n, 3),
             "reward": torch.rand(n, 1), "discount": torch.ones(n, 1), "value": ctx * 2}
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        out = losses(model, batch, gamma=0.99, use_td=use_td)
        opt.zero_grad()
        out["total"].backward()
        opt.step()
        first = first if first is not None else out["action"].item()
    assert out["action"].item() < 0.5 * first
    assert ("value" in out) == (name not in ("hyperzero_without_q", "mlp_policy"))
    assert ("td" in out) == (name in ("hyperzero", "mlp_rl_td"))


# ----------------------------------------------------------------------------- pipeline
TINY = {"num_frames": 40, "hyperzero_steps_per_iteration": 20, "hyperzero_episode_steps": 20,
        "hyperzero_margins": [1.0, 2.0, 3.0, -1.0], "td3_hidden": 16, "td3_batch_size": 8, "td3_seed_frames": 10,
        "td3_expl_steps": 5, "td3_buffer_size": 100, "hyperzero_rollout_episodes": 1, "hyperzero_epochs": 3,
        "hyperzero_batch_size": 16, "hyperzero_hidden": 8, "hyperzero_embed_widths": [8, 8],
        "hyperzero_approximators": "hyperzero,mlp_policy", "eval_interval": 1, "save_interval": 1,
        "progress_bar": False}


def _cfg(tmp_path, **extra):
    pytest.importorskip("dm_control")
    from config.loader import resolve

    return resolve("cheetah_run_hyperzero", values={**TINY, "results_log_dir": str(tmp_path), **extra})


def _final_artifacts(run_dir):
    models = {n: torch.load(os.path.join(run_dir, "models", f"{n}.pt"), weights_only=False)
              for n in ("hyperzero", "mlp_policy")}
    with open(os.path.join(run_dir, "eval", "zero_shot.json")) as f:
        rows = json.load(f)["rows"]
    _, rolls = ds.load_dataset(os.path.join(run_dir, "dataset"))
    return models, rows, rolls


def _assert_same(a, b):
    (ma, ra, da), (mb, rb, db) = a, b
    assert ra == rb
    for name in ma:
        for key in ("state_dict", "best_state_dict"):
            for p, v in ma[name][key].items():
                torch.testing.assert_close(mb[name][key][p], v, rtol=0, atol=0)
    for x, y in zip(da, db):
        for k in ds.ARRAYS:
            np.testing.assert_array_equal(x.arrays[k], y.arrays[k])


@pytest.mark.parametrize("stop_after", [1, 4])  # inside the experts stage / inside the regressor stage
def test_pipeline_resume_equals_uninterrupted(tmp_path, stop_after):
    from trainers import build_trainer

    cfg = _cfg(tmp_path)
    full_dir, cut_dir = str(tmp_path / "full"), str(tmp_path / "cut")
    result = build_trainer(cfg, full_dir).train()
    assert "hyperzero_ratio_mean" in result and "mlp_policy_ratio_mean" in result
    full = _final_artifacts(full_dir)
    assert len(full[1]) == 1  # one held-out margin of four (round(0.15 * 4) -> at least 1)
    split = ds.read_split(os.path.join(full_dir, "dataset"), "rew", cfg.seed)
    assert [[r["margin"]] for r in full[1]] == split["test"]
    assert not {tuple(k) for k in split["train"]} & {tuple(k) for k in split["test"]}

    first = build_trainer(cfg, cut_dir)
    first.train(callbacks=[lambda tr, m: m["iteration"] >= stop_after])
    assert first.iter == stop_after and not os.path.exists(os.path.join(cut_dir, "eval"))
    resumed = build_trainer(cfg, cut_dir, resume=True)
    assert resumed.iter == stop_after
    resumed.train()
    _assert_same(full, _final_artifacts(cut_dir))
    assert os.path.exists(os.path.join(cut_dir, "plots", "zero_shot.png"))


def test_stages_as_separate_runs_equal_all(tmp_path):
    """experts -> dataset -> regressor -> evaluate, each its own run dir via main.py, gives the 'all' result."""
    import main

    base = ["--env-type", "cheetah_run_hyperzero", "--results_log_dir", str(tmp_path)]
    for k, v in TINY.items():
        base += [f"--{k}"] + ([str(x) for x in v] if isinstance(v, list) else [str(v)])

    def run(*extra):
        assert main.main(base + list(extra)) == 0
        runs = sorted(os.listdir(tmp_path / "logs_ContextualCheetahRun"))
        return str(tmp_path / "logs_ContextualCheetahRun" / runs[-1])

    all_dir = run("--exp_label", "a_all")  # run dirs sort by label
    experts = run("--exp_label", "b_experts", "--hyperzero_stage", "experts")
    data_run = run("--exp_label", "c_dataset", "--hyperzero_stage", "dataset", "--hyperzero_experts_run", experts)
    data_dir = os.path.join(data_run, "dataset")
    models = run("--exp_label", "d_regressor", "--hyperzero_stage", "regressor", "--hyperzero_dataset_dir", data_dir)
    ev = run("--exp_label", "e_eval", "--hyperzero_stage", "evaluate", "--hyperzero_dataset_dir", data_dir,
             "--hyperzero_models_run", models)
    with open(os.path.join(all_dir, "eval", "zero_shot.json")) as f, open(os.path.join(ev, "eval", "zero_shot.json")) as g:
        assert json.load(f) == json.load(g)


def test_resume_without_buffers_refills_before_updating(tmp_path):
    from trainers import build_trainer

    cfg = _cfg(tmp_path, hyperzero_checkpoint_buffers=False, num_frames=60)
    run_dir = str(tmp_path / "run")
    first = build_trainer(cfg, run_dir)
    first.train(callbacks=[lambda tr, m: m["iteration"] >= 1])
    from utils.checkpoint import load_checkpoint

    ckpt = load_checkpoint(run_dir)
    assert "buffer" not in ckpt["experts"] and ckpt["experts"]["steps"] == 20
    resumed = build_trainer(cfg, run_dir, resume=True)
    assert resumed.experts.buffer.size == 0
    updates = resumed.experts.agent.num_updates
    resumed._experts_iteration(0, last=False)  # 20 steps: the buffer refills to td3_seed_frames (10), then updates
    assert resumed.experts.buffer.size == 20 and resumed.experts.agent.num_updates == updates + 11


# ----------------------------------------------------------------------------- unique contexts
@pytest.mark.parametrize("name", ["hyperzero", "mlp_rl_td"])
def test_generate_once_per_unique_context_equals_per_sample(name):
    """``generate`` runs the heads once per distinct context: same losses and gradients as per sample."""
    from models import hyperzero as mh

    torch.manual_seed(0)
    model, use_td = build_approximator(name, 2, 5, 3, hidden=8, embed_widths=(8, 16))
    n = 40
    ctx = torch.tensor([[1.0, 0.5], [2.0, 0.5], [3.0, 0.4]])[torch.randint(0, 3, (n,))]
    batch = {"context": ctx, "state": torch.randn(n, 5), "action": torch.rand(n, 3) * 2 - 1,
             "next_state": torch.randn(n, 5), "reward": torch.rand(n, 1), "discount": torch.ones(n, 1),
             "value": torch.randn(n, 1)}
    calls = []
    inner = model._generate if name == "hyperzero" else model.embedding.forward

    def spy(c):
        calls.append(len(c))
        return inner(c)

    if name == "hyperzero":
        model._generate = spy
    else:
        model.embedding.forward = spy
    out = losses(model, batch, gamma=0.99, use_td=use_td)
    out["total"].backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    assert calls == [3]  # three distinct contexts in 40 samples
    model.zero_grad()
    ref = {}
    orig = mh.per_unique_context
    try:
        mh.per_unique_context = lambda fn, c: fn(c)  # the per-sample computation
        ref = losses(model, batch, gamma=0.99, use_td=use_td)
        ref["total"].backward()
    finally:
        mh.per_unique_context = orig
    assert calls == [3, n]
    for k in out:
        torch.testing.assert_close(out[k], ref[k])
    for k, p in model.named_parameters():
        torch.testing.assert_close(grads[k], p.grad)


# ----------------------------------------------------------------------------- regressor seeds
def test_seed_summary_known_case(tmp_path):
    from hyperzero import evaluate as zs

    rows = [{"margin": 1.0, "length": 0.5, "expert_return": 100.0, "a_s1_return": 50.0, "a_s1_ratio": 0.5,
             "a_s2_return": 70.0, "a_s2_ratio": 0.7},
            {"margin": 2.0, "length": 0.5, "expert_return": 200.0, "a_s1_return": 100.0, "a_s1_ratio": 0.5,
             "a_s2_return": 180.0, "a_s2_ratio": 0.9}]
    groups = {"a": {1: "a_s1", 2: "a_s2"}}
    agg = zs.seed_summary(rows, groups)["a"]
    # per seed over contexts: s1 75 (ratio 0.5), s2 125 (ratio 0.8) -> mean 100, sample std 35.355
    assert agg["seeds"] == 2 and agg["per_seed"]["1"]["return"] == 75.0 and agg["per_seed"]["2"]["ratio"] == 0.8
    assert agg["return_mean"] == 100.0 and agg["return_std"] == pytest.approx(50 / np.sqrt(2))
    assert (agg["return_min"], agg["return_max"]) == (75.0, 125.0)
    assert agg["ratio_mean"] == pytest.approx(0.65) and agg["ratio_std"] == pytest.approx(0.3 / np.sqrt(2))
    assert agg["per_context"][1]["return_mean"] == 140.0 and agg["per_context"][1]["return_std"] == pytest.approx(
        80 / np.sqrt(2))
    summary = zs.summary(rows, ["a_s1", "a_s2"], groups)
    assert summary["a_return_mean"] == 100.0 and summary["a_s2_return_mean"] == 125.0
    assert summary["a_ratio_seed_std"] == pytest.approx(agg["ratio_std"])
    meta = {"env_name": "E", "episode_steps": 3, "contexts": [
        {"margin": m, "length": 0.5, "episodes": 2, "expert_return": r} for m, r in ((1.0, 100.0), (2.0, 200.0),
                                                                                      (3.0, 300.0))]}
    split = {"input": "rew", "seed": 7, "train": [[3.0]], "test": [[1.0], [2.0]]}
    zs.write_report(str(tmp_path / "r.md"), rows, meta, split, groups)
    text = (tmp_path / "r.md").read_text()
    assert "| 3 | 0.5 | 300.0 | train |" in text and "| 1 | 0.5 | 100.0 | held out |" in text
    assert "| a | 2 | 100.0 ± 35.4 [75.0, 125.0] | 0.650 ± 0.212 |" in text


def test_repeated_regressor_seeds_rejected(tmp_path):
    from config.errors import ConfigError

    with pytest.raises(ConfigError, match="repeated"):
        _cfg(tmp_path, hyperzero_regressor_seeds=[1, 1])


def test_regressor_seeds_train_independent_models(tmp_path):
    """Each regressor seed is its own training on the same dataset and split; the seed equal to --seed
    reproduces the run without regressor seeds exactly, the other differs; the evaluation aggregates."""
    from trainers import build_trainer

    single_dir, multi_dir = str(tmp_path / "single"), str(tmp_path / "multi")
    cfg = _cfg(tmp_path)
    build_trainer(cfg, single_dir).train()
    multi_cfg = _cfg(tmp_path, hyperzero_regressor_seeds=[cfg.seed, 5])
    result = build_trainer(multi_cfg, multi_dir).train()
    assert "hyperzero_return_seed_std" in result and "mlp_policy_seed5_ratio_mean" in result
    assert sorted(os.listdir(os.path.join(multi_dir, "models"))) == sorted(
        f"{n}_seed{s}.pt" for n in ("hyperzero", "mlp_policy") for s in (cfg.seed, 5))
    for n in ("hyperzero", "mlp_policy"):
        one = torch.load(os.path.join(single_dir, "models", f"{n}.pt"), weights_only=False)
        same = torch.load(os.path.join(multi_dir, "models", f"{n}_seed{cfg.seed}.pt"), weights_only=False)
        other = torch.load(os.path.join(multi_dir, "models", f"{n}_seed5.pt"), weights_only=False)
        assert same["seed"] == cfg.seed and other["seed"] == 5
        for p, v in one["state_dict"].items():
            torch.testing.assert_close(same["state_dict"][p], v, rtol=0, atol=0)
        assert any(not torch.equal(other["state_dict"][p], v) for p, v in one["state_dict"].items())
    with open(os.path.join(multi_dir, "eval", "zero_shot.json")) as f:
        out = json.load(f)
    rows, agg = out["rows"], out["seeds"]["hyperzero"]
    per_seed = [np.mean([r[f"hyperzero_seed{s}_return"] for r in rows]) for s in (cfg.seed, 5)]
    assert agg["return_mean"] == pytest.approx(np.mean(per_seed))
    assert agg["return_std"] == pytest.approx(np.std(per_seed, ddof=1))
    with open(os.path.join(single_dir, "eval", "zero_shot.json")) as f:
        single_rows = json.load(f)["rows"]
    assert [r["hyperzero_return"] for r in single_rows] == [r[f"hyperzero_seed{cfg.seed}_return"] for r in rows]
    assert os.path.exists(os.path.join(multi_dir, "eval", "report.md"))
    assert os.path.exists(os.path.join(multi_dir, "plots", "zero_shot.png"))


def test_regressor_seeds_resume_equals_uninterrupted(tmp_path):
    from trainers import build_trainer

    cfg = _cfg(tmp_path, hyperzero_regressor_seeds=[3, 4])
    full_dir, cut_dir = str(tmp_path / "full"), str(tmp_path / "cut")
    build_trainer(cfg, full_dir).train()
    first = build_trainer(cfg, cut_dir)
    first.train(callbacks=[lambda tr, m: m["iteration"] >= 4])  # inside the regressor stage
    resumed = build_trainer(cfg, cut_dir, resume=True)
    resumed.train()
    for label in ("hyperzero_seed3", "hyperzero_seed4", "mlp_policy_seed4"):
        a = torch.load(os.path.join(full_dir, "models", f"{label}.pt"), weights_only=False)
        b = torch.load(os.path.join(cut_dir, "models", f"{label}.pt"), weights_only=False)
        for p, v in a["state_dict"].items():
            torch.testing.assert_close(b["state_dict"][p], v, rtol=0, atol=0)


def test_small_preset_budget_and_seed_defaults_unchanged():
    pytest.importorskip("dm_control")
    from config.loader import resolve

    small, full = resolve("cheetah_run_hyperzero_small"), resolve("cheetah_run_hyperzero")
    assert small.hyperzero_margins == full.hyperzero_margins and len(small.hyperzero_margins) == 20
    assert len(small.hyperzero_regressor_seeds) >= 3 and small.trainer == "hyperzero"
    assert {"hyperzero", "mlp_policy", "mlp_rl", "mlp_rl_td"} <= set(small.hyperzero_approximators.split(","))
    assert small.num_frames < full.num_frames and small.td3_hidden < full.td3_hidden
    # the seed's settings stay in the full preset
    assert (full.num_frames, full.td3_hidden, full.td3_lr, full.hyperzero_epochs, full.hyperzero_regressor_seeds,
            full.hyperzero_approximators) == (1_100_000, 256, 1e-4, 500, None, "all")


def test_progress_line_names_the_stage(tmp_path):
    """The frames stop at the experts' budget; the progress line says which stage runs and how
    far it is, so the regressor and evaluate stages show progress too."""
    from trainers import build_trainer

    cfg = _cfg(tmp_path)
    trainer = build_trainer(cfg, str(tmp_path / "run"))
    seen = []
    for _ in range(trainer.num_iterations):
        trainer.train_iteration()
        trainer.iter += 1
        seen.append(trainer.progress_info().split("  ")[0])
    plan = dict(trainer.plan)
    want = [f"{stage} {i}/{n}" for stage, n in trainer.plan for i in range(1, n + 1)]
    assert seen == want and plan["regressor"] > 1, seen
