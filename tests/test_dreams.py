"""ReId's dream environments: latent samplers, latent pool, dream env, decoder reward, plots, options."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linprog
from scipy.spatial import Delaunay
from scipy.stats import gaussian_kde

from dreams.decoder_reward import decoder_reward_fn, snapshot
from dreams.dream_env import DreamEnv
from dreams.plots import plot_dream_rewards, reward_map
from dreams.pool import LatentPool, latents_for_fit
from dreams.samplers import KDESampler, MixupSampler, PriorSampler, load_sampler, make_sampler, parse_bandwidth
from environments.bamdp import BAMDPWrapper
from environments.registry import make_env


def _pool(m=20, d=3, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d))
    return rng.normal(size=(m, d)) @ a + np.arange(d)  # correlated, non-centred


def _batched_cov(samples: np.ndarray, batches: int = 20):
    """Mean of per-batch sample covariances and its standard error (entrywise)."""
    covs = np.stack([np.cov(b.T) for b in np.array_split(samples, batches)])
    return covs.mean(0), covs.std(0, ddof=1) / np.sqrt(batches)


# ----- KDE ----------------------------------------------------------------------------------------
def test_kde_scott_factor_and_covariance_match_scipy():
    data = _pool(m=20, d=3)
    kde = KDESampler(data)
    ref = gaussian_kde(data.T)
    assert kde.factor == pytest.approx(20 ** (-1 / 7))            # Scott: M^(-1/(d+4))
    np.testing.assert_allclose(kde.covariance, ref.covariance, rtol=1e-12)
    np.testing.assert_allclose(kde.covariance, kde.factor ** 2 * np.cov(data.T), rtol=1e-10)


def test_kde_numeric_bandwidth_is_the_scipy_factor():
    data = _pool(m=30, d=2)
    kde = KDESampler(data, bandwidth="0.3")
    np.testing.assert_allclose(kde.covariance, gaussian_kde(data.T, bw_method=0.3).covariance, rtol=1e-12)
    np.testing.assert_allclose(kde.covariance, 0.09 * np.cov(data.T), rtol=1e-10)
    silver = KDESampler(data, bandwidth="silverman")
    np.testing.assert_allclose(silver.covariance, gaussian_kde(data.T, bw_method="silverman").covariance)


def test_kde_sample_covariance_is_empirical_plus_kernel():
    """A KDE draw is a uniformly picked pool point plus N(0, f^2 S) noise (S: unbiased pool
    covariance), so Cov = (M-1)/M S + f^2 S."""
    data = _pool(m=20, d=3)
    kde = KDESampler(data, seed=1)
    m, f = len(data), kde.factor
    s = np.cov(data.T)
    expected = ((m - 1) / m + f ** 2) * s
    np.testing.assert_allclose(kde.expected_sample_covariance(), expected, rtol=1e-10)
    samples = kde.sample(200_000).double().numpy()
    cov, se = _batched_cov(samples)
    assert np.all(np.abs(cov - expected) < 5 * se + 1e-3), (cov, expected, se)
    # the test has power: it tells apart the draws without kernel noise, and (1 + f^2) S (unbiased pool cov)
    assert np.any(np.abs(cov - (m - 1) / m * s) > 5 * se + 1e-3)
    assert np.any(np.abs(cov - (1 + f ** 2) * s) > 5 * se + 1e-3)
    assert np.all(np.abs(samples.mean(0) - data.mean(0)) < 5 * np.sqrt(np.diag(expected) / len(samples)))


def test_kde_rejects_degenerate_pools():
    with pytest.raises(ValueError, match="more than"):
        KDESampler(_pool(m=3, d=3))
    with pytest.raises(ValueError):
        parse_bandwidth("wide")
    with pytest.raises(ValueError):
        parse_bandwidth(-1.0)
    assert parse_bandwidth("Scott") == "scott" and parse_bandwidth("0.5") == 0.5


# ----- mixup --------------------------------------------------------------------------------------
def test_mixup_samples_lie_in_convex_hull_2d():
    data = _pool(m=8, d=2, seed=3)
    hull = Delaunay(data)
    samples = MixupSampler(data, alpha=0.3, seed=0).sample(2000).double().numpy()
    assert (hull.find_simplex(samples) >= 0).all()
    outside = data.mean(0) + 10 * (data.max(0) - data.min(0))
    assert hull.find_simplex(outside[None])[0] == -1  # the check can fail


def _in_hull(points: np.ndarray, x: np.ndarray, tol: float = 1e-5) -> bool:
    """Is x (float32-rounded) within ``tol`` of a convex combination of the rows of points? (feasibility LP)"""
    m = len(points)
    a_ub = np.vstack([points.T, -points.T])
    b_ub = np.concatenate([x + tol, -x + tol])
    res = linprog(np.zeros(m), A_ub=a_ub, b_ub=b_ub, A_eq=np.ones((1, m)), b_eq=[1.0], bounds=[(0, None)] * m,
                  method="highs")
    return res.status == 0


def test_mixup_subset_mixing_in_hull_4d_lp():
    data = _pool(m=12, d=4, seed=5)
    samples = MixupSampler(data, alpha=1.0, num_mix=3, seed=2).sample(40).double().numpy()
    assert all(_in_hull(data, x) for x in samples)
    assert not _in_hull(data, data.mean(0) + 100.0)


def test_mixup_reid_default_is_uniform_on_the_simplex():
    """Dirichlet(1,...,1) over all M points: mean = pool mean, Cov = biased pool cov / (M + 1)."""
    data = _pool(m=5, d=2, seed=1)
    samples = MixupSampler(data, seed=0).sample(100_000).double().numpy()
    m = len(data)
    expected = np.cov(data.T, bias=True) / (m + 1)
    cov, se = _batched_cov(samples)
    assert np.all(np.abs(cov - expected) < 5 * se + 1e-4), (cov, expected)
    np.testing.assert_allclose(samples.mean(0), data.mean(0), atol=0.01)


# ----- prior, seeding, checkpoints -------------------------------------------------------------------
def test_prior_sampler_moments():
    s = PriorSampler(3, seed=0).sample(100_000).double().numpy()
    np.testing.assert_allclose(s.mean(0), 0, atol=0.02)
    np.testing.assert_allclose(np.cov(s.T), np.eye(3), atol=0.02)
    shifted = PriorSampler(2, mean=torch.tensor([1.0, -2.0]), logvar=torch.log(torch.tensor([4.0, 0.25])))
    s = shifted.sample(100_000).double().numpy()
    np.testing.assert_allclose(s.mean(0), [1, -2], atol=0.03)
    np.testing.assert_allclose(s.std(0), [2, 0.5], rtol=0.02)


@pytest.mark.parametrize("kind", ["kde", "mixup", "prior"])
def test_samplers_seeded_and_resumable(kind):
    data = _pool(m=15, d=3)
    a = make_sampler(kind, data, bandwidth=0.5, alpha=0.7, seed=4)
    b = make_sampler(kind, data, bandwidth=0.5, alpha=0.7, seed=4)
    c = make_sampler(kind, data, bandwidth=0.5, alpha=0.7, seed=5)
    first = a.sample(6)
    assert first.shape == (6, 3) and first.dtype == torch.float32
    assert torch.equal(first, b.sample(6))
    assert not torch.equal(first, c.sample(6))
    a.sample(3)
    state = a.state_dict()
    expected = a.sample(10)
    assert torch.equal(load_sampler(state).sample(10), expected)
    # an external torch generator gives reproducible draws and leaves the own generator alone
    assert torch.equal(make_sampler(kind, data, seed=0).sample(4, torch.Generator().manual_seed(1)),
                       make_sampler(kind, data, seed=7).sample(4, torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError):
        make_sampler("gmm", data)


# ----- latent pool -----------------------------------------------------------------------------------
def test_fifo_pool_keeps_newest_in_order():
    pool = LatentPool(2, capacity=3)
    rows = torch.arange(10.0).reshape(5, 2)
    assert pool.add(rows[:2]) == 2
    assert pool.add(rows[2:], mask=torch.tensor([True, False, True])) == 2
    assert torch.equal(pool.latents(), rows[[1, 2, 4]])  # oldest (row 0) dropped, row 3 masked out
    assert len(pool) == 3 and pool.count == 4


def test_keyed_pool_keeps_latest_per_task():
    pool = LatentPool(1, num_keys=4, keep_logvar=True)
    means = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    pool.add(means, logvars=-means, keys=torch.tensor([2, 0, 2, -1]))
    assert pool.keys().tolist() == [0, 2]
    assert pool.latents().flatten().tolist() == [2.0, 3.0]       # task 2: the later latent
    assert pool.latent_logvars().flatten().tolist() == [-2.0, -3.0]
    with pytest.raises(ValueError):
        pool.add(means[:1], logvars=means[:1], keys=torch.tensor([4]))
    with pytest.raises(ValueError):
        pool.add(means[:1], keys=torch.tensor([1]))              # logvars missing


def test_refit_schedule_clear_and_state():
    pool = LatentPool(2, capacity=100, refit_every=3, clear_on_fit=True)
    assert pool.due(0)
    pool.add(torch.ones(4, 2))
    pool.mark_fitted(0)
    assert len(pool) == 0 and pool.num_fits == 1
    assert [pool.due(i) for i in (1, 2, 3, 4)] == [False, False, True, True]
    pool.add(torch.randn(5, 2))
    other = LatentPool(2, capacity=100, refit_every=3, clear_on_fit=True)
    other.load_state_dict(pool.state_dict())
    assert torch.equal(other.latents(), pool.latents()) and other.last_fit == 0 and other.count == 9
    with pytest.raises(ValueError):
        LatentPool(2, capacity=50).load_state_dict(pool.state_dict())


def test_latents_for_fit_priority():
    running, per_task = LatentPool(2, capacity=10), LatentPool(2, num_keys=3)
    assert latents_for_fit(running, per_task)[1] == "prior"
    per_task.add(torch.ones(3, 2), keys=torch.arange(3))
    lat, src = latents_for_fit(running, per_task, min_latents=3)
    assert src == "per_task" and lat.shape == (3, 2)
    running.add(torch.zeros(2, 2))
    assert latents_for_fit(running, per_task, min_latents=3)[1] == "per_task"  # too few running latents
    running.add(torch.zeros(2, 2))
    assert latents_for_fit(running, per_task, min_latents=3)[1] == "running"
    assert latents_for_fit(None, per_task, min_latents=4)[1] == "prior"


# ----- dream env --------------------------------------------------------------------------------------
def _toy_reward(z, prev_obs, action, next_obs):
    """A hand-made 'decoder': minus the distance of s' to the goal z[:2], plus 10 * z[2]."""
    return -(next_obs[:, :2] - z[:, :2]).norm(dim=1) + 10 * z[:, 2]


def test_dream_rewards_from_reward_fn_real_unchanged():
    real = make_env("SparsePointEnv", 4, seed=3)
    twin = make_env("SparsePointEnv", 4, seed=3)
    env = DreamEnv(make_env("SparsePointEnv", 4, seed=3), _toy_reward, latent_dim=3, num_dream=2)
    assert env.dream_mask.tolist() == [False, False, True, True]
    z = torch.tensor([[0.5, 0.5, 0.1], [-1.0, 0.0, 0.0]])
    env.set_dream_latents(env.dream_mask, z)
    gen = torch.Generator().manual_seed(0)
    for _ in range(30):
        a = torch.rand(4, 2, generator=gen) * 2 - 1
        obs, rew, term, trunc, info = env.step(a)
        obs_r, rew_r, *_ = twin.step(a)
        assert torch.equal(obs, obs_r)                                      # transitions from the simulator
        assert torch.equal(rew[:2], rew_r[:2])                              # real copies untouched
        assert torch.allclose(rew[2:], _toy_reward(z, None, None, obs[2:]))  # dreams: reward_fn at z
        assert torch.equal(info["real_reward"], rew_r) and info["dream"].tolist() == [False, False, True, True]
    assert real.num_envs == 4
    with pytest.raises(ValueError):
        env.set_dream_latents(torch.tensor([True, False, False, False]), z[:1])


def test_dream_latents_persist_over_reset_mdp_and_change_at_reset():
    draws = iter(torch.arange(100.0).reshape(-1, 1).repeat(1, 3))
    env = DreamEnv(make_env("PointEnv", 3, seed=0), _toy_reward, 3, num_dream=2,
                   sampler=lambda n: torch.stack([next(draws) for _ in range(n)]))
    env.reset()
    assert env.get_latents()[:, 0].tolist() == [0.0, 0.0, 1.0]               # the real copy has none
    env.reset_mdp()
    assert env.get_latents()[:, 0].tolist() == [0.0, 0.0, 1.0]
    env.reset(torch.tensor([False, False, True]))
    assert env.get_latents()[:, 0].tolist() == [0.0, 0.0, 2.0]


def test_dream_latents_change_only_at_bamdp_ends():
    env = DreamEnv(make_env("SparsePointEnv", 2, seed=0, max_episode_steps=3), _toy_reward, 3, num_dream=1,
                   sampler=PriorSampler(3, seed=0))
    bamdp = BAMDPWrapper(env, episodes_per_task=2)
    bamdp.reset()
    z = env.get_latents()[1].clone()
    changes = []
    for t in range(12):
        _, _, done, info = bamdp.step(torch.zeros(2, 2))
        new = env.get_latents()[1]
        changes.append(bool(done[1]) == (not torch.equal(new, z)))
        z = new.clone()
    assert all(changes)  # new latent exactly when the BAMDP (2 episodes of 3 steps) ends


def test_done_flag_and_dreamed_dynamics():
    seen = {}

    def reward_fn(z, prev_obs, action, next_obs):
        seen.setdefault("prev", []).append(prev_obs.clone())
        seen.setdefault("next", []).append(next_obs.clone())
        return next_obs[:, 0]

    def state_fn(z, prev_obs, action):  # move by z instead of the action
        return prev_obs[:, :2] + z[:, :2]

    env = DreamEnv(make_env("PointEnv", 2, seed=0, max_episode_steps=2), reward_fn, 2, num_dream=1,
                   state_fn=state_fn, add_done_info=True)
    env.set_dream_latents(env.dream_mask, torch.tensor([[0.5, -0.25]]))
    obs, rew, *_ = env.step(torch.ones(2, 2))
    assert torch.allclose(obs, torch.tensor([[0.1, 0.1], [0.5, -0.25]]))
    obs, rew, term, trunc, _ = env.step(torch.ones(2, 2))
    assert torch.allclose(obs[1], torch.tensor([1.0, -0.5])) and rew[1] == 1.0 and trunc.all()
    assert [p[0, -1].item() for p in seen["prev"]] == [0.0, 0.0]  # prev_obs flag 0
    assert [n[0, -1].item() for n in seen["next"]] == [0.0, 1.0]  # next_obs flag: episode end
    env.reset_mdp()
    assert torch.equal(env.last_obs, torch.zeros(2, 2))


def test_dream_env_checkpoint_resumes_exactly():
    def make():
        return DreamEnv(make_env("SparsePointEnv", 4, seed=1), _toy_reward, 3, num_dream=2)

    def run(env):
        out, gen = [], torch.Generator().manual_seed(0)
        for _ in range(10):
            env.reset(torch.rand(4, generator=gen) < 0.4)
            out += [env.step(torch.rand(4, 2, generator=gen))[1], env.get_latents().flatten()]
        return torch.cat(out)

    env = make()
    env.set_sampler(KDESampler(_pool(m=20, d=3), seed=3))
    run(env)
    state = env.state_dict()
    expected = run(env)
    other = make()
    other.load_state_dict(state)
    assert torch.equal(run(other), expected)


# ----- decoder reward ---------------------------------------------------------------------------------
def test_decoder_reward_fn_matches_decoder_call():
    from models.decoder import RewardDecoder

    torch.manual_seed(0)
    dec = RewardDecoder(3, 3, 2, [8], 4, 2, input_prev_state=True, input_action=True)
    frozen = snapshot(dec)
    z, prev, act, nxt = torch.randn(5, 3), torch.randn(5, 3), torch.randn(5, 2), torch.randn(5, 3)
    expected = dec(z, nxt, prev, act).squeeze(-1)
    assert torch.allclose(decoder_reward_fn(frozen)(z, prev, act, nxt), expected)
    assert torch.allclose(decoder_reward_fn(frozen, scale=lambda: torch.tensor(2.0))(z, prev, act, nxt), 2 * expected)
    assert not any(p.requires_grad for p in frozen.parameters())
    with torch.no_grad():
        dec.net[0].weight.add_(1.0)                      # training the live decoder ...
    assert torch.allclose(decoder_reward_fn(frozen)(z, prev, act, nxt), expected)  # ... leaves the snapshot
    with pytest.raises(NotImplementedError):
        decoder_reward_fn(RewardDecoder(3, 2, 2, [8], 4, 2, multihead_size=25))


# ----- plots --------------------------------------------------------------------------------------------
def test_reward_map_peaks_at_the_latent_goal_and_png_written(tmp_path):
    xs, ys = np.linspace(-1.5, 1.5, 31), np.linspace(-0.5, 1.5, 21)
    grid = reward_map(_toy_reward, torch.tensor([0.6, 0.9, 0.0]), xs, ys, obs_dim=3)
    iy, ix = np.unravel_index(grid.argmax(), grid.shape)
    assert grid.shape == (21, 31) and xs[ix] == pytest.approx(0.6) and ys[iy] == pytest.approx(0.9)
    path = plot_dream_rewards(_toy_reward, torch.randn(3, 3), str(tmp_path / "dreams.png"),
                              train_goals=torch.tensor([[1.0, 0.0], [0.0, 1.0]]), eval_goals=np.array([[-1.0, 0.0]]),
                              obs_dim=3, resolution=20)
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


# ----- options and presets ------------------------------------------------------------------------------
_PRESETS = ["pointrobot_dream", "pointrobot_full_circle_dream", "pointrobot_finite_varibad",
            "pointrobot_full_circle_finite_varibad"]


@pytest.mark.parametrize("name", _PRESETS)
def test_presets_resolve_with_reid_settings(name):
    from config.loader import resolve

    cfg = resolve(name)
    assert (cfg.env_name, cfg.env_num_goals, cfg.env_num_train_goals, cfg.env_num_eval_goals) == ("SparsePointEnv", 1000,
                                                                                                   30, 50)
    assert (cfg.max_rollouts_per_task, cfg.policy_layers, cfg.ppo_num_minibatch, cfg.ppo_clip_param) == (2, [128, 128], 4, 0.05)
    assert (cfg.policy_gamma, cfg.policy_entropy_coef, cfg.precollect_len, cfg.vae_batch_num_trajs) == (0.97, 0.01, 0, 5)
    assert (cfg.num_frames, cfg.num_processes, cfg.seed, cfg.log_interval, cfg.save_interval) == (10**8, 16, 206, 50, 1000)
    assert cfg.env_kwargs == ({"goal_sampler": "circle"} if "full_circle" in name else {})
    assert cfg.num_dream_envs == {"pointrobot_dream": 6, "pointrobot_full_circle_dream": 2}.get(name, 0)
    make_env(cfg.env_name, 1, **cfg.env_kwargs)  # the env accepts the kwargs


def test_full_circle_kwarg_gives_goals_all_around():
    goals = make_env("SparsePointEnv", 1, seed=0, goal_sampler="circle").sample_tasks(2000)
    assert (goals[:, 1] < -0.5).any() and (goals[:, 1] > 0.5).any()


def _resolve(**values):
    from config.loader import resolve

    return resolve("pointrobot_dream", values=values)


@pytest.mark.parametrize("values,match", [
    ({"num_dream_envs": 16}, "num_processes"),
    ({"decode_reward": False}, "reward decoder"),
    ({"disable_decoder": True}, "reward decoder"),
    ({"env_num_train_goals": 960}, "overlap"),
    ({"env_num_goals": None, "env_num_train_goals": None, "env_num_eval_goals": None,
      "kde_from_running_latents": False}, "finite pool"),
    ({"env_num_goals": 50, "env_num_train_goals": None, "env_num_eval_goals": 50}, "no training task"),
    ({"use_kde": False, "use_mixup": True}, "use_kde"),
    ({"kde_bandwidth": "wide"}, "kde_bandwidth"),
    ({"kde_from_train": False, "kde_from_running_latents": False}, "latents to fit"),
])
def test_validate_rules(values, match):
    from config.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        _resolve(**values)


def test_valid_variants_and_sampler_kind():
    from config.loader import parse_value
    from config.options_dreams import latent_sampler_kind
    from config.schema import OPTIONS

    assert latent_sampler_kind(_resolve()) == "kde"
    assert latent_sampler_kind(_resolve(use_mixup=True)) == "mixup"
    assert latent_sampler_kind(_resolve(use_kde=False)) == "prior"
    cfg = _resolve(env_num_train_goals=None, env_num_eval_goals=None, kde_bandwidth="0.4", delay_dream=None)
    assert parse_bandwidth(cfg.kde_bandwidth) == 0.4
    assert parse_value(OPTIONS["env_num_eval_goals"], ["none"]) is None
    assert OPTIONS["num_dream_envs"].default == 0 and OPTIONS["env_num_goals"].default is None
    for name in ("saved_policy", "saved_encoder", "saved_reward_decoder", "saved_state_decoder", "freeze_vae",
                 "delayed_freeze", "train_vae_on_dream", "clone_dream_vae", "kde_pool_size", "mixup_alpha"):
        assert name in OPTIONS


def test_dream_env_over_task_pool_in_bamdp(tmp_path):
    from environments.task_pool import TaskPoolEnv

    pool_env = TaskPoolEnv(make_env("SparsePointEnv", 4, seed=0, max_episode_steps=4), 100, 5, 10, pool_seed=0)
    env = DreamEnv(pool_env, _toy_reward, 3, num_dream=1, sampler=MixupSampler(_pool(m=6, d=3), seed=0))
    bamdp = BAMDPWrapper(env, episodes_per_task=2)
    bamdp.reset()
    train = pool_env.train_tasks
    for _ in range(40):
        z = env.get_latents()  # the latent of this step (a BAMDP end redraws it inside the step)
        _, rew, _, info = bamdp.step(torch.ones(4, 2) * 0.3)
        assert torch.allclose(rew[3:], _toy_reward(z[3:], None, None, info["next_obs"][3:, :2]))
        assert torch.equal(rew[:3], info["real_reward"][:3])
        assert (pool_env.get_task()[:, None] - train[None]).abs().le(1e-6).all(-1).any(1).all()
    state = env.state_dict()
    torch.save(state, tmp_path / "env.pt")
    loaded = torch.load(tmp_path / "env.pt", weights_only=True)  # plain tensors and python values only
    assert loaded["sampler"]["kind"] == "mixup"


def test_set_dream_mask_draws_latents_for_new_dream_copies():
    env = DreamEnv(make_env("PointEnv", 3, seed=0), _toy_reward, 3, num_dream=0)
    assert env.num_dream == 0
    obs, rew, *_ = env.step(torch.ones(3, 2))
    assert torch.equal(rew, -(obs - env.get_task()).norm(dim=1))          # no dreams: real rewards
    env.set_sampler(lambda n: torch.full((n, 3), 7.0))
    env.set_dream_mask(torch.tensor([False, True, True]))
    assert env.get_latents()[:, 0].tolist() == [0.0, 7.0, 7.0]
    env.set_sampler(lambda n: torch.full((n, 3), 8.0))
    env.set_dream_mask(torch.tensor([True, True, True]))                   # only the new copy draws
    assert env.get_latents()[:, 0].tolist() == [8.0, 7.0, 7.0]
