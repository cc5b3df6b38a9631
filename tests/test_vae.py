"""ELBO and KL on tiny inputs: closed forms, masks, reductions, subsampling."""
from types import SimpleNamespace

import pytest
import torch

from config.loader import resolve
from vae import VAE, gaussian_kl
from utils.spec import RunSpec
from tests.conftest import tiny


def test_gaussian_kl_matches_torch_distributions():
    torch.manual_seed(0)
    m1, lv1, m2, lv2 = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(m1, (0.5 * lv1).exp()),
                                            torch.distributions.Normal(m2, (0.5 * lv2).exp())).sum(-1)
    assert torch.allclose(gaussian_kl(m1, lv1, m2, lv2), ref, atol=1e-5)


def test_gaussian_kl_known_value():
    # KL(N(1, 1) || N(0, 1)) = 0.5 per dimension
    kl = gaussian_kl(torch.ones(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2))
    assert torch.allclose(kl, torch.tensor([1.0]))


def _vae(**extra):
    cfg = resolve("pointrobot_varibad", values=tiny(**extra))
    spec = RunSpec(obs_dim=3, action_dim=2, num_actions=2, discrete=False, task_dim=2, belief_dim=0,
                   num_tasks=None, episode_len=3, horizon=6, num_updates=1)
    return VAE(spec, cfg.section("vae", "encoder", "decoder"), 4, "cpu", seed=0), spec


def _batch(B=3, L=6, lengths=None):
    g = torch.Generator().manual_seed(1)
    return SimpleNamespace(prev_obs=torch.randn(L, B, 3, generator=g), actions=torch.randn(L, B, 2, generator=g),
                           rewards=torch.randn(L, B, 1, generator=g), next_obs=torch.randn(L, B, 3, generator=g),
                           tasks=torch.randn(B, 2, generator=g),
                           lengths=torch.full((B,), L) if lengths is None else torch.tensor(lengths))


def test_kl_term_equals_closed_form_sum_over_posteriors():
    vae, _ = _vae(decode_reward=False, decode_task=True, kl_weight=1.0)
    b = _batch()
    post = vae.encoder(b.actions, b.next_obs, b.rewards, return_prior=True)
    prev_m = torch.cat([torch.zeros_like(post.mean[:1]), post.mean[:-1]])
    prev_lv = torch.cat([torch.zeros_like(post.logvar[:1]), post.logvar[:-1]])
    expected = gaussian_kl(post.mean, post.logvar, prev_m, prev_lv).sum(0).mean()  # sum terms, mean trajs
    _, stats = vae.loss(b)
    assert torch.allclose(stats["kl"], expected, atol=1e-5)


def test_reductions_average_over_trajectories_for_both_terms():
    """Duplicating every trajectory must not change any term (reference bug: KL was summed)."""
    torch.manual_seed(0)
    vae, _ = _vae(disable_stochasticity_in_latent=True)
    b = _batch(B=2)
    double = SimpleNamespace(**{k: torch.cat([v, v], 1 if v.dim() == 3 else 0) for k, v in vars(b).items()})
    _, s1 = vae.loss(b)
    _, s2 = vae.loss(double)
    for key in ("reward_reconstr_err", "kl", "sum"):
        assert torch.allclose(s1[key], s2[key], atol=1e-5), key


def test_reward_error_known_answer_for_deterministic_decoder():
    """Sum over decodes and ELBO terms, mean over trajectories, computed by hand."""
    vae, _ = _vae(disable_stochasticity_in_latent=True, disable_kl_term=True)
    b = _batch(B=2, L=4, lengths=[4, 2])
    post = vae.encoder(b.actions, b.next_obs, b.rewards, return_prior=True)
    total = 0.0
    for j in range(2):
        n = int(b.lengths[j])
        for t in range(n + 1):          # posteriors 0..len
            for i in range(n):          # decode every real step
                pred = vae.reward_decoder(post.mean[t, j], b.next_obs[i, j], b.prev_obs[i, j], b.actions[i, j])
                total += float((pred - b.rewards[i, j]).pow(2).sum().detach())
    _, stats = vae.loss(b)
    assert abs(float(stats["reward_reconstr_err"]) - total / 2) < 1e-3


def test_decode_only_past_masks_future_and_prior():
    vae, _ = _vae(disable_stochasticity_in_latent=True, disable_kl_term=True, decode_only_past=True,
                  vae_avg_reconstruction_terms=True)
    b = _batch(B=1, L=3)
    terms, e_ok, _, _ = vae._elbo_terms(b)
    err = terms["reward_reconstr_err"][:, 0].detach()
    assert float(err[0]) == 0.0          # the prior has no past to reconstruct
    assert float(err[1]) > 0.0


def test_subsampling_shapes_and_lengths_respected():
    vae, _ = _vae(vae_subsample_elbos=5, vae_subsample_decodes=4)
    b = _batch(B=3, L=6, lengths=[6, 2, 4])
    e_idx, e_ok, d_idx, d_ok = vae._indices(b.lengths, 6)
    assert e_idx.shape == (5, 3) and d_idx.shape == (4, 3)
    assert bool((e_idx <= b.lengths).all()) and bool((d_idx < b.lengths).all())
    loss, _ = vae.loss(b)
    loss.backward()  # gradients flow through the subsampled terms


def test_buffer_keeps_whole_trajectories_fifo():
    vae, _ = _vae(size_vae_buffer=3)
    buf = vae.buffer
    N = buf.num_envs
    for step in range(6):
        done = torch.full((N,), step == 5)
        x = torch.full((N, 3), float(step))
        buf.insert(x, torch.zeros(N, 2), torch.full((N,), float(step)), x + 1, torch.zeros(N, 2), done, bool(done.any()))
    assert buf.size == 3 and int(buf.lengths[0]) == 6
    assert torch.equal(buf.data["rewards"][:, 0, 0], torch.arange(6.0))
    assert int(buf.t.max()) == 0


@pytest.mark.parametrize("flag", ["default", "disable_kl_term", "kl_to_gauss_prior"])
def test_kl_ablations(flag):
    """Each ablation's KL value: to the previous posterior (default), to N(0, I) for every
    posterior (kl_to_gauss_prior), none (disable_kl_term); summed over posteriors of a
    trajectory (incl. the prior at t = 0), averaged over trajectories."""
    vae, _ = _vae(**({} if flag == "default" else {flag: True}))
    b = _batch()
    _, stats = vae.loss(b)
    if flag == "disable_kl_term":
        assert "kl" not in stats
        return
    post = vae.encoder(b.actions, b.next_obs, b.rewards, return_prior=True)
    zeros = torch.zeros_like(post.mean)
    to_prev = gaussian_kl(post.mean, post.logvar, torch.cat([zeros[:1], post.mean[:-1]]),
                          torch.cat([zeros[:1], post.logvar[:-1]])).sum(0).mean()
    to_gauss = gaussian_kl(post.mean, post.logvar, zeros, zeros).sum(0).mean()
    assert not torch.allclose(to_prev, to_gauss, atol=1e-3)  # the two ablations are distinguishable here
    expected = to_gauss if flag == "kl_to_gauss_prior" else to_prev
    assert torch.allclose(stats["kl"], expected, atol=1e-5)


def test_pairwise_decoding_equals_explicit_concatenation():
    """The factorised first layer gives the same numbers as decoding every pair explicitly."""
    vae, _ = _vae(decode_state=True)
    torch.manual_seed(0)
    K, D, B = 4, 5, 3
    lat, nxt, prv, act = torch.randn(K, B, 3), torch.randn(D, B, 3), torch.randn(D, B, 3), torch.randn(D, B, 2)
    exp = lambda x: x[None].expand(K, *x.shape)  # noqa: E731
    lat_kd = lat[:, None].expand(K, D, B, 3)
    explicit = vae.reward_decoder(lat_kd, exp(nxt), exp(prv), exp(act))
    assert torch.allclose(vae.reward_decoder.pairs(lat, nxt, prv, act), explicit, atol=1e-5)
    explicit = vae.state_decoder(lat_kd, exp(prv), exp(act))
    assert torch.allclose(vae.state_decoder.pairs(lat, prv, act), explicit, atol=1e-5)


def test_buffer_rebuilds_prev_obs_from_episode_starts():
    """prev_obs is not stored: it must come back exactly, incl. the reset observation that
    starts every episode of the BAMDP (done flag = last observation entry)."""
    from environments import make_env
    from environments.bamdp import BAMDPWrapper
    from vae import TrajectoryBuffer

    env = BAMDPWrapper(make_env("GridNavi", 3, seed=0), episodes_per_task=3)
    buf = TrajectoryBuffer(10, env.horizon, 3, {"prev_obs": 3, "actions": 1, "rewards": 1, "next_obs": 3}, 2,
                           "cpu", episodes=3)
    obs = env.reset()
    g = torch.Generator().manual_seed(0)
    prevs = []
    for _ in range(env.horizon):
        a = torch.randint(5, (3,), generator=g)
        new_obs, r, done, info = env.step(a)
        prevs.append(obs)
        buf.insert(obs, a, r, info["next_obs"], None, done, bool(done.any()))
        obs = new_obs
    assert buf.size == 3 and int(buf.lengths[0]) == 45
    rebuilt = buf._prev_obs(buf.data["next_obs"][:, :3].float(), buf.start_obs[:, :3].float())
    assert torch.equal(rebuilt, torch.stack(prevs))


def test_float16_buffer_halves_memory():
    from vae import TrajectoryBuffer

    dims = {"prev_obs": 117, "actions": 8, "rewards": 1, "next_obs": 117}
    full = TrajectoryBuffer(100, 1200, 1, dims, 2, "cpu", torch.float32, episodes=6)
    half = TrajectoryBuffer(100, 1200, 1, dims, 2, "cpu", torch.float16, episodes=6)
    assert half.nbytes() * 2 == full.nbytes()
    # no stored prev_obs: (117 + 8 + 1) per step instead of the reference's 2 x 117 + 8 + 1
    assert full.nbytes() < 100 * 1200 * 4 * (126 + 1)


@pytest.mark.parametrize("avg_decodes", [True, False])
def test_multihead_reward_term_equals_the_sum_over_posterior_step_pairs(avg_decodes, tmp_path, monkeypatch):
    """VAE._multihead_reward_error (visits of each cell counted once per trajectory; the [K, D, B]
    pairs never formed) against the per-pair BCE of ``_reward_error`` masked and summed over the
    steps as before, on a GridNavi VAE's buffer with trajectories cut to different lengths: the
    terms and the gradients of the decoder and the latents, in float64 (only a mistake, not
    rounding, can tell them apart)."""
    from metalearner import MetaLearner

    trainer = MetaLearner(resolve("gridworld_varibad", values=tiny(num_frames=256, vae_avg_reconstruction_terms=avg_decodes)),
                          str(tmp_path / "r"))
    trainer.train()
    vae = trainer.vae
    batch = vae.buffer.sample(3, torch.Generator().manual_seed(0))
    batch.lengths = torch.tensor([batch.lengths[0], 7, 1])
    for m in vae.modules().values():
        m.double()
    for k, v in vars(batch).items():
        if v.is_floating_point():
            setattr(batch, k, v.double())

    import torch.nn.functional as F

    import vae as vae_module

    monkeypatch.setattr(vae_module, "_bernoulli_error", lambda logits, rewards: F.binary_cross_entropy_with_logits(
        logits, (rewards == 1).to(logits.dtype), reduction="none"))  # the per-pair BCE, kept in float64

    def per_pair(self, lat, tgt, e_ok, d_ok, avg):
        K = lat.shape[0]
        m = e_ok[:, None] & d_ok[None]
        err = self._reward_error(lat, tgt, lambda x: x[None].expand(K, *x.shape)) * m
        return err.sum(1) / m.sum(1).clamp_min(1) if avg else err.sum(1)

    results = []
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # (the encoder's zero state)
    try:
        for fn in (VAE._multihead_reward_error, per_pair):
            vae._multihead_reward_error = fn.__get__(vae)
            vae.noise.manual_seed(3)
            terms, e_ok, _, _ = vae._elbo_terms(batch, subsample=False)
            err = terms["reward_reconstr_err"]
            params = list(vae.reward_decoder.parameters()) + list(vae.encoder.parameters())
            grads = torch.autograd.grad((err * torch.linspace(0.5, 2, err.numel()).view_as(err)).sum(), params)
            results.append((err.detach(), grads))
    finally:
        torch.set_default_dtype(default)
    (new, g_new), (ref, g_ref) = results
    assert new.shape == ref.shape and bool((ref[1:] != 0).any())
    torch.testing.assert_close(new, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(g_new, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
