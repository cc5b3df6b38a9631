"""The RL loss through the encoder (RL2, RNN+HN, SplAgger, ...) as a component: in every PPO
minibatch the policy's latents are recomputed WITH gradients from the rollout (resetting to
the prior at BAMDP ends) and the encoder is stepped with the policy; an added VAE loss
(``vae_loss_coeff``) where the model also has decoders."""
from __future__ import annotations

import torch

from components.base import Component


class EncoderRL(Component):
    @staticmethod
    def wanted(cfg) -> bool:
        return bool(cfg.rlloss_through_encoder) and not cfg.disable_metalearner

    def __init__(self, cfg, spec, agent, device, env=None):
        self.cfg, self.agent = cfg, agent

    def update_kwargs(self, trainer) -> dict:
        vae, cfg = self.agent.vae, self.cfg
        s = trainer.storage
        kwargs = dict(recompute_latent=lambda envs=None: self.recompute_latent(s, envs), extra_optimiser=vae.optimiser,
                      extra_params=list(vae.encoder.parameters()), extra_max_grad_norm=cfg.encoder_max_grad_norm)
        if vae.ready():
            kwargs["extra_loss"] = lambda: cfg.vae_loss_coeff * vae.loss(vae.buffer.sample(cfg.vae_batch_num_trajs,
                                                                                          vae.generator))[0]
        return kwargs

    def recompute_latent(self, s, envs: torch.Tensor | None = None) -> torch.Tensor:
        """Policy latents [T, n, d] of the rollout's env copies ``envs`` (None: all), recomputed
        WITH gradients."""
        pick = (lambda x: x) if envs is None else (lambda x: x[:, envs])  # noqa: E731
        actions = self.agent.encoder_action(s.actions).reshape(s.num_steps, s.num_envs, -1)
        post = self.agent.vae.encoder.forward_with_resets(
            pick(actions), pick(s.next_obs), pick(s.rewards_raw[..., None]),
            s.hidden[0] if envs is None else s.hidden[0][envs], pick(s.dones),
            prev_states=pick(s.inputs["state"][:-1]))
        return self.agent.latent_input(post.mean[:-1], post.logvar[:-1])
