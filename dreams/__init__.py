"""ReId's dream environments (Rimon et al. 2022), as standalone building blocks.

- ``samplers``: where dream tasks come from - a Gaussian KDE, a Dirichlet mixup or the prior
  over VAE latents, seeded and checkpointable.
- ``pool``: a FIFO of posterior latents gathered at BAMDP ends of real copies, with the
  refit schedule of the sampler.
- ``dream_env``: a ``MetaEnv`` wrapper whose flagged copies are rewarded by a learned reward
  function at their latent instead of by the real task.
- ``decoder_reward``: turns the VAE reward decoder (a frozen snapshot) into such a reward function.
- ``plots``: the dreamed reward over the plane of the point robot, next to the real goals.
"""
