"""ReId's dream environments (Rimon et al. 2022), as standalone building blocks.

- ``samplers``: where dream tasks come from - a Gaussian KDE, a Dirichlet mixup or the prior
  over VAE latents, seeded and checkpointable.
- ``pool``: a FIFO of posterior latents gathered at BAMDP ends of real copies (or one latent per
  training task), with the refit schedule of the sampler.
- ``dream_env``: a ``MetaEnv`` wrapper whose flagged copies are rewarded by a learned reward
  function at their latent instead of by the real task.
- ``decoder_reward``: turns the VAE reward decoder (a frozen snapshot) into such a reward function.
- ``plots``: the dreamed reward over the plane of the point robot, next to the real goals.

How a trainer component can wire them (options in ``config/options_dreams.py``; k =
``num_dream_envs``, d = ``latent_dim``):

1. env: ``inner = make_env(...)``; with ``env_num_goals`` wrap it in
   ``environments.task_pool.TaskPoolEnv(inner, env_num_goals, env_num_train_goals, env_num_eval_goals,
   pool_seed=env_pool_seed or seed)`` (the evaluation env: same pool seed, ``set_task_set("eval")``);
   then ``DreamEnv(env, reward_fn, d, dream_mask=all False, add_done_info=<BAMDP R > 1>)`` inside
   the ``BAMDPWrapper``. ``reward_fn`` starts as ``decoder_reward_fn(snapshot(vae.reward_decoder),
   scale=...)`` (``clone_dream_vae``: snapshot once; otherwise refresh the snapshot at each refit).
2. every BAMDP end of a real copy: ``running.add(mean[done & real])`` (``LatentPool(d,
   capacity=kde_pool_size, refit_every=update_kde_interval, clear_on_fit=True)``) and, with a pool,
   ``per_task.add(mean, keys=task_env.task_ids, mask=done & real)`` (``LatentPool(d,
   num_keys=env_num_goals)``), taking the posterior before the encoder's hidden state is reset.
3. from update ``delay_dream`` on, at ``running.due(it)``: ``lat, src = latents_for_fit(running if
   kde_from_running_latents else None, per_task if kde_from_train else None, min_latents=d + 1)``;
   ``env.set_sampler(make_sampler(latent_sampler_kind(cfg), lat, latent_dim=d, bandwidth=kde_bandwidth,
   alpha=mixup_alpha, seed=...))`` (the prior when ``lat`` is None); ``running.mark_fitted(it)``.
   The first time, ``set_dream_mask`` (the last k copies) right after a BAMDP boundary of those
   copies: they draw their first latents from the new sampler.
4. ``info["dream"]`` keeps dream transitions out of the VAE buffer unless ``train_vae_on_dream``,
   and out of the returns logged as real ones (``info["real_reward"]``).
"""
