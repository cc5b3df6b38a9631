"""--num_seeds: S seeds in one process, each bit for bit its own single run (with
--stack_seed_updates false, or a VAE that is not stacked) or equal to it up to float rounding
(stacked VAE updates); resume equals uninterrupted; the stacked ops equal the plain ones; what
is not built is refused."""
import json
import os

import pytest
import torch
import torch.nn.functional as F

from config.errors import ConfigError
from metalearner import MetaLearner
from models import members
from trainers import build_trainer
from trainers.multi_seed import MultiSeedTrainer, member_dir
from utils.checkpoint import candidate_paths, peek_info


def _params(learner):
    mods = [learner.policy] + (list(learner.vae.modules().values()) if learner.vae else [])
    return torch.cat([p.detach().flatten() for m in mods for p in m.parameters()])


def _progress_rows(run_dir):
    import csv

    with open(os.path.join(run_dir, "progress.csv")) as f:
        rows = list(csv.DictReader(f))
    drop = ("time", "fps", "wall")  # wall-clock columns differ between any two runs
    return [{k: v for k, v in r.items() if not any(d in k for d in drop)} for r in rows]


# ------------------------------------------------------------------ the stacked ops
def test_member_linear_and_gru_cell_equal_the_plain_ops_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    S, B, I, H = 5, 7, 6, 16  # a member's block B * H a multiple of the SIMD width (see members.gru_cell)
    x, h = torch.randn(S, B, I, generator=g), torch.randn(S, B, H, generator=g)
    w, b = torch.randn(S, 3 * H, I, generator=g), torch.randn(S, 3 * H, generator=g)
    w_hh, b_hh = torch.randn(S, 3 * H, H, generator=g), torch.randn(S, 3 * H, generator=g)
    assert torch.equal(members.linear(x, w, b), torch.stack([F.linear(x[s], w[s], b[s]) for s in range(S)]))
    assert torch.equal(members.linear(x, w), torch.stack([F.linear(x[s], w[s]) for s in range(S)]))
    want = torch.stack([torch.gru_cell(x[s], h[s], w[s], w_hh[s], b[s], b_hh[s]) for s in range(S)])
    assert torch.equal(members.gru_cell(x, h, w, w_hh, b, b_hh), want)


def test_gru_sequence_equals_torchs_gru_with_its_gradients():
    """members.gru_sequence (hand-written backward through time) against each member's
    ``torch.nn.GRU`` from a zero state, forward and every gradient (input gates' weights, hidden
    weights and biases), in float64 so that only a mistake, not rounding, can tell them apart;
    and in float32 to the tolerance the stacked VAE step is held to."""
    S, T, B, I, H = 3, 7, 4, 5, 6
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        g = torch.Generator().manual_seed(1)
        grus = [torch.nn.GRU(I, H).to(dtype) for _ in range(S)]
        for gru in grus:
            for p in gru.parameters():
                p.data.copy_(torch.randn(p.shape, generator=g, dtype=dtype) * 0.5)
        x = torch.randn(S, T, B, I, generator=g, dtype=dtype)
        w_ih = torch.stack([m.weight_ih_l0 for m in grus]).detach().requires_grad_()
        b_ih = torch.stack([m.bias_ih_l0 for m in grus]).detach().requires_grad_()
        w_hh = torch.stack([m.weight_hh_l0 for m in grus]).detach().requires_grad_()
        b_hh = torch.stack([m.bias_hh_l0 for m in grus]).detach().requires_grad_()
        out_grad = torch.randn(S, T + 1, B, H, generator=g, dtype=dtype)
        gi = (torch.einsum("stbi,sgi->stbg", x, w_ih) + b_ih[:, None, None]).contiguous()
        hs = members.gru_sequence(gi, w_hh, b_hh)
        (hs * out_grad).sum().backward()
        for s, gru in enumerate(grus):
            out, _ = gru(x[s])
            want = torch.cat([torch.zeros(1, B, H, dtype=dtype), out])
            torch.testing.assert_close(hs[s].detach(), want.detach(), rtol=tol, atol=tol)
            (want * out_grad[s]).sum().backward()
            for mine, theirs in ((w_ih, gru.weight_ih_l0), (b_ih, gru.bias_ih_l0), (w_hh, gru.weight_hh_l0),
                                 (b_hh, gru.bias_hh_l0)):
                torch.testing.assert_close(mine.grad[s], theirs.grad, rtol=tol, atol=tol)


# ------------------------------------------------------------------ members == single runs
CASES = {
    "gridworld": ("gridworld_varibad", {}),
    "gridworld_no_overlap": ("gridworld_varibad", {"vae_update_overlap": False}),
    "pointrobot": ("pointrobot_varibad", {"num_frames": 256}),  # continuous actions (Gaussian noise per member)
    "treasure_hyperx": ("treasure_hunt_hyperx", {"num_frames": 256, "rnd_batch_size": 16}),  # components
}
EXACT = {"stack_seed_updates": False}  # separate VAE and policy updates: bit for bit


@pytest.mark.parametrize("case", list(CASES))
def test_each_seed_equals_its_single_run(case, tiny_cfg, tmp_path):
    env_type, extra = CASES[case]
    kw = {"num_frames": 384, "seed": 5, **extra}
    multi = MultiSeedTrainer(tiny_cfg(env_type, num_seeds=3, **kw, **EXACT), str(tmp_path / "multi"))
    assert multi.env_group is not None  # the seeds' envs step as one group (environments/members.py)
    multi.train()
    for k, seed in enumerate((5, 6, 7)):
        single_dir = str(tmp_path / f"single_{seed}")
        single = MetaLearner(tiny_cfg(env_type, **{**kw, "seed": seed}), single_dir)
        single.train()
        m = multi.members[k]
        assert m.cfg.seed == seed and m.frames == single.frames and m.iter == single.iter
        assert torch.equal(_params(m), _params(single)), f"seed {seed}: parameters differ from its single run"
        assert torch.equal(m.storage.actions, single.storage.actions)
        assert m.last_eval["returns"] == single.last_eval["returns"]
        assert _progress_rows(member_dir(multi.run_dir, seed)) == _progress_rows(single_dir)
    assert not torch.equal(_params(multi.members[0]), _params(multi.members[1]))  # the seeds differ


def test_stacked_vae_steps_equal_separate_steps_up_to_rounding(tiny_cfg, tmp_path):
    """The seeds' VAE updates as one stacked computation (vae_members.stacked_steps) against each
    seed's own ``VAE._steps`` from the same state on the same batches: same parameters after two
    steps up to float rounding, same logged losses; and the steps did change them."""
    from vae_members import stackable, stacked_steps

    cfg = tiny_cfg("gridworld_varibad", num_seeds=3, num_frames=256, seed=5, stack_seed_updates=False)
    a, b = (MultiSeedTrainer(cfg, str(tmp_path / name)) for name in ("a", "b"))
    a.train(), b.train()
    va, vb = [m.vae for m in a.members], [m.vae for m in b.members]
    for v in va + vb:
        v.wait()
    assert stackable(va[0]) is None
    before = [_params(m) for m in a.members]
    batches = [[v.buffer.sample(v.cfg.vae_batch_num_trajs, v.generator) for _ in range(2)] for v in va]
    got = stacked_steps(va, batches)
    want = [v._steps([v.buffer.sample(v.cfg.vae_batch_num_trajs, v.generator) for _ in range(2)]) for v in vb]
    for k in range(3):
        pa, pb = _params(a.members[k]), _params(b.members[k])
        assert not torch.equal(pa, before[k])
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)
        assert got[k].keys() == want[k].keys()
        for name in want[k]:
            assert got[k][name] == pytest.approx(want[k][name], rel=1e-5, abs=1e-6), name
    assert got[0]["sum"] != got[1]["sum"]  # each seed its own loss
    for v in va:  # frozen later in a run (--delayed_freeze): the losses are computed, nothing moves
        v.frozen = True
    frozen = [_params(m) for m in a.members]
    stacked_steps(va, [[v.buffer.sample(v.cfg.vae_batch_num_trajs, v.generator)] for v in va])
    assert all(torch.equal(_params(m), p) for m, p in zip(a.members, frozen))


@pytest.mark.parametrize("case", ["gridworld", "treasure_hyperx"])
def test_stacked_seeds_stay_close_to_their_single_runs(case, tiny_cfg, tmp_path):
    """The default (stacked VAE and policy updates) end to end: each seed's parameters and logged
    values are its single run's up to float rounding (treasure hunt: continuous actions)."""
    env_type, extra = CASES[case]
    kw = {"num_frames": 384, "seed": 5, **extra}
    multi = MultiSeedTrainer(tiny_cfg(env_type, num_seeds=2, **kw), str(tmp_path / "multi"))
    assert (multi.stacked_vae is not None) == (case == "gridworld")  # treasure: state decoder, not stacked
    multi.train()
    for k, seed in enumerate((5, 6)):
        single_dir = str(tmp_path / f"single_{seed}")
        single = MetaLearner(tiny_cfg(env_type, **{**kw, "seed": seed}), single_dir)
        single.train()
        m = multi.members[k]
        torch.testing.assert_close(_params(m), _params(single), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(m.storage.actions, single.storage.actions, rtol=1e-4, atol=1e-5)
        rows, want = _progress_rows(member_dir(multi.run_dir, seed)), _progress_rows(single_dir)
        assert [r.keys() for r in rows] == [r.keys() for r in want]
        for r, w in zip(rows, want):
            for key in w:
                if w[key] != r[key]:
                    assert float(r[key]) == pytest.approx(float(w[key]), rel=1e-4, abs=1e-5), key


@pytest.mark.parametrize("env_type", ["gridworld_varibad", "pointrobot_varibad"])
def test_stacked_policy_updates_equal_separate_updates_up_to_rounding(env_type, tiny_cfg, tmp_path):
    """algorithms.ppo.update_members against each seed's own ``PolicyUpdater.update`` from the
    same state on the same rollout and permutations: same parameters and stats up to rounding
    (discrete and Gaussian policies), and the update did change them."""
    from algorithms.ppo import update_members
    from models.policy import members_evaluator

    cfg = tiny_cfg(env_type, num_seeds=3, num_frames=256, seed=5, stack_seed_updates=False)
    a, b = (MultiSeedTrainer(cfg, str(tmp_path / name)) for name in ("a", "b"))
    a.train(), b.train()
    pol = lambda m: torch.cat([p.detach().flatten() for p in m.policy.parameters()])  # noqa: E731
    before = [pol(m) for m in a.members]
    gens = [torch.Generator().manual_seed(100 + k) for k in range(3)]
    got = update_members([m.updater for m in a.members], [m.storage for m in a.members],
                         members_evaluator([m.policy for m in a.members]), gens)
    for k, m in enumerate(b.members):
        torch.manual_seed(100 + k)  # the permutations gens[k] gave
        want = m.updater.update(m.storage)
        assert not torch.equal(pol(a.members[k]), before[k])
        torch.testing.assert_close(pol(a.members[k]), pol(m), rtol=1e-5, atol=1e-6)
        assert got[k].keys() == want.keys()
        for name in want:
            assert got[k][name] == pytest.approx(want[name], rel=1e-4, abs=1e-6), name


@pytest.mark.parametrize("env_type", ["gridworld_varibad", "pointrobot_varibad"])
def test_merged_clip_and_adam_steps_equal_each_members_own_bit_for_bit(env_type, tiny_cfg, tmp_path):
    """algorithms.ppo.MergedSteps (one foreach norm, one foreach multiply, one fused Adam for all
    members) against each member's clip_grad_norm_ + optimiser.step on the same gradients, over
    several steps (the first creates the Adam states): the same parameters and the same
    optimiser states in each member's own optimiser (what its checkpoint holds), bit for bit.
    Gradients scaled so that some members are clipped and some are not."""
    from algorithms.ppo import MergedSteps

    cfg = tiny_cfg(env_type, num_seeds=3, num_frames=128, seed=3, stack_seed_updates=False, policy_anneal_lr=True)
    a, b = (MultiSeedTrainer(cfg, str(tmp_path / name)) for name in ("a", "b"))
    ua, ub = [m.updater for m in a.members], [m.updater for m in b.members]
    assert ua[0].scheduler is not None  # (its "initial_lr" in the parameter group is not Adam's)
    assert ua[0].max_grad_norm
    gen = torch.Generator().manual_seed(0)
    for step in range(3):
        for k, (x, y) in enumerate(zip(ua, ub)):
            for p, q in zip(x._params, y._params):
                g = torch.randn(p.shape, generator=gen) * (0.01 if k == 1 else 10.0)
                p.grad, q.grad = g.clone(), g.clone()
        merged = MergedSteps.of([u.optimiser for u in ua], [u._policy_params for u in ua], [u.max_grad_norm for u in ua])
        assert merged is not None
        merged.step()
        for y in ub:
            torch.nn.utils.clip_grad_norm_(y._policy_params, y.max_grad_norm)
            y.optimiser.step()
        for x, y in zip(ua, ub):
            for p, q in zip(x._params, y._params):
                assert torch.equal(p, q) and torch.equal(p.grad, q.grad)
            sa, sb = x.optimiser.state_dict()["state"], y.optimiser.state_dict()["state"]
            assert sa.keys() == sb.keys() and len(sa) == len(x._params)
            for i in sa:
                for key in sb[i]:
                    assert torch.equal(sa[i][key], sb[i][key]), (step, i, key)


def test_merged_steps_only_where_the_members_share_hyperparameters(tiny_cfg, tmp_path):
    from algorithms.ppo import MergedSteps

    m = MultiSeedTrainer(tiny_cfg("gridworld_varibad", num_seeds=2, num_frames=128), str(tmp_path / "r"))
    updaters = [x.updater for x in m.members]

    def merged():
        return MergedSteps.of([u.optimiser for u in updaters], [u._policy_params for u in updaters],
                              [u.max_grad_norm for u in updaters])
    assert merged() is not None
    updaters[1].optimiser.param_groups[0]["lr"] *= 0.5
    assert merged() is None
    updaters[1].optimiser.param_groups[0]["lr"] *= 2.0
    updaters[1].max_grad_norm = 1.0 + (updaters[0].max_grad_norm or 0.0)
    assert merged() is None
    vaes = [x.vae for x in m.members]  # the VAEs' steps (no clipping configured) merge too
    assert MergedSteps.of([v.optimiser for v in vaes], [v.parameters() for v in vaes], [None, None]) is not None


def test_annealed_learning_rates_with_merged_steps_give_no_scheduler_warning(tiny_cfg, tmp_path):
    """The seeds' optimisers step through MergedSteps, not their own step(): their LR schedulers
    must still see them as stepped (torch warns about a schedule stepped first otherwise)."""
    import warnings

    m = MultiSeedTrainer(tiny_cfg("gridworld_varibad", num_seeds=2, num_frames=256, eval_interval=1000,
                                  policy_anneal_lr=True), str(tmp_path / "r"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m.train()
    assert not [w for w in caught if "lr_scheduler" in str(w.message)]
    lrs = [x.updater.optimiser.param_groups[0]["lr"] for x in m.members]
    assert lrs[0] == lrs[1] < m.cfg.lr_policy  # annealed, alike


def test_resume_of_a_multi_seed_run_equals_uninterrupted(tiny_cfg, tmp_path):
    kw = dict(num_seeds=2, eval_interval=1000)
    full = MultiSeedTrainer(tiny_cfg("gridworld_varibad", num_frames=512, **kw), str(tmp_path / "full"))
    full.train()                                                  # 4 updates
    part_dir = str(tmp_path / "part")
    MultiSeedTrainer(tiny_cfg("gridworld_varibad", num_frames=256, **kw), part_dir).train()  # 2, checkpoint
    resumed = MultiSeedTrainer(tiny_cfg("gridworld_varibad", num_frames=512, **kw), part_dir, resume=True)
    assert resumed.iter == 2
    resumed.train()
    for a, b in zip(resumed.members, full.members):
        assert a.frames == b.frames
        assert torch.equal(_params(a), _params(b))


def test_a_kill_between_the_seeds_checkpoints_resumes_all_from_one_iteration(tiny_cfg, tmp_path):
    """Seeds save one after the other; a kill in between leaves one seed a checkpoint ahead. The
    resume takes every seed from the common iteration (the ahead seed from its previous
    checkpoint) and then equals the uninterrupted run."""
    kw = dict(num_seeds=2, eval_interval=1000, save_interval=1)
    full = MultiSeedTrainer(tiny_cfg("gridworld_varibad", num_frames=512, **kw), str(tmp_path / "full"))
    full.train()                                                  # 4 updates
    part_dir = str(tmp_path / "part")
    MultiSeedTrainer(tiny_cfg("gridworld_varibad", num_frames=384, **kw), part_dir).train()  # 3, a checkpoint each
    ckpts = os.path.join(member_dir(part_dir, 73), "checkpoints")
    by_iter = {peek_info(p).iteration: p for p in reversed(candidate_paths(member_dir(part_dir, 73)))}  # newest wins
    for p in candidate_paths(member_dir(part_dir, 73)):
        if p != by_iter[2]:
            os.remove(p)
    os.replace(by_iter[2], os.path.join(ckpts, "checkpoint.pt"))  # seed 73: its saves at iteration 3 were lost
    resumed = MultiSeedTrainer(tiny_cfg("gridworld_varibad", num_frames=512, **kw), part_dir, resume=True)
    assert [m.iter for m in resumed.members] == [2, 2]
    resumed.train()
    for a, b in zip(resumed.members, full.members):
        assert torch.equal(_params(a), _params(b))
    assert _progress_rows(member_dir(part_dir, 74)) == _progress_rows(member_dir(full.run_dir, 74))


def test_a_member_dir_resumes_alone_as_a_single_run(tiny_cfg, tmp_path):
    """<run>/seed_<k> is a standalone run dir: resumed on its own it continues exactly as the
    single run of that seed does (bit for bit with separate VAE updates)."""
    part_dir = str(tmp_path / "part")
    MultiSeedTrainer(tiny_cfg("gridworld_varibad", num_frames=256, num_seeds=2, seed=3, stack_seed_updates=False),
                     part_dir).train()
    seed_dir = member_dir(part_dir, 4)
    with open(os.path.join(seed_dir, "config.json")) as f:
        saved = json.load(f)
    assert saved["seed"] == 4 and saved["num_seeds"] == 1
    alone = MetaLearner(tiny_cfg("gridworld_varibad", num_frames=512, seed=4), seed_dir, resume=True)
    alone.train()
    single = MetaLearner(tiny_cfg("gridworld_varibad", num_frames=512, seed=4), str(tmp_path / "single"))
    single.train()
    assert torch.equal(_params(alone), _params(single))


# ------------------------------------------------------------------ refused
def test_envs_step_seed_by_seed_where_they_cannot_be_grouped(tiny_cfg, tmp_path, capsys):
    """The policy reading the env's belief each step (an oracle) needs each seed's env current at
    every step: no group, and a line says why (the numbers stay the single runs': exact tests)."""
    m = MultiSeedTrainer(tiny_cfg("gridworld_belief_oracle", num_seeds=2, num_frames=128), str(tmp_path / "r"))
    assert m.env_group is None
    assert "the seeds' envs step one by one (the policy reads the env's belief" in capsys.readouterr().out


def test_num_seeds_is_refused_where_it_is_not_built(tiny_cfg, tmp_path):
    with pytest.raises(ConfigError, match="--trainer varibad"):
        tiny_cfg("nav_wide_ring_mime", num_seeds=2)
    with pytest.raises(ConfigError, match="sample_embeddings"):
        tiny_cfg("gridworld_varibad", num_seeds=2, sample_embeddings=True)
    with pytest.raises(ValueError, match="MLP actor-critic"):
        build_trainer(tiny_cfg("gridworld_varibad", num_seeds=2, use_hypernet=True), str(tmp_path / "h"))
    with pytest.raises(ConfigError):
        tiny_cfg("gridworld_varibad", num_seeds=0)


def test_main_refuses_an_unbatchable_model_and_leaves_no_run_dir(tmp_path, capsys):
    import main

    rc = main.main(["--env-type", "gridworld_varibad", "--num_seeds", "2", "--use_hypernet", "true",
                    "--results_log_dir", str(tmp_path), "--device", "cpu", "--progress_bar", "false"])
    assert rc == 2 and "MLP actor-critic" in capsys.readouterr().err
    assert not [d for _, ds, _ in os.walk(tmp_path) for d in ds if d.startswith("varibad_")]


def test_main_trains_num_seeds_into_one_dir_per_seed(tmp_path, capsys):
    """Smoke test of the command line (the numbers are checked above)."""
    import main

    rc = main.main(["--env-type", "gridworld_varibad", "--num_seeds", "2", "--num_frames", "256", "--num_processes", "4",
                    "--policy_num_steps", "32", "--precollect_len", "0", "--results_log_dir", str(tmp_path),
                    "--device", "cpu", "--progress_bar", "false", "--vis_interval", "1000"])
    assert rc == 0
    (run,) = [os.path.join(r, d) for r, ds, _ in os.walk(tmp_path) for d in ds if d.startswith("varibad_")]
    assert sorted(d for d in os.listdir(run) if d.startswith("seed_")) == ["seed_73", "seed_74"]
    assert "seed 74: final evaluation" in capsys.readouterr().out
