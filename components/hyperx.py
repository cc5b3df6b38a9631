"""HyperX (Zintgraf et al. 2021) as a component: the normalised, weighted, annealed
exploration bonuses of ``exploration.bonus`` added to every rollout's rewards before GAE, and
the RND predictors trained on hyper-states re-encoded from the VAE buffer."""
from __future__ import annotations

import torch

from components.base import Component
from exploration.bonus import BONUS_NAMES, ExplorationBonus


def build_bonus(cfg, spec, device) -> ExplorationBonus | None:
    """HyperX bonuses on (s_{t+1}, b_{t+1}); b is the VAE posterior (mean, logvar) or, for
    the oracles, the env's exact belief. None if no bonus is on."""
    on = {k: getattr(cfg, f"exploration_bonus_{k}") for k in BONUS_NAMES}
    if not any(on.values()):
        return None
    belief_dim = spec.belief_dim if cfg.disable_metalearner else 2 * cfg.latent_dim
    if (on["hyperstate"] or on["belief"]) and not belief_dim:
        raise ValueError("the hyper-state/belief bonus needs a belief: an encoder or an env with an exact belief")
    if on["vae_error"] and (cfg.disable_metalearner or cfg.disable_decoder):
        raise ValueError("--exploration_bonus_vae_error needs the VAE decoders")
    return ExplorationBonus(
        spec.obs_dim, belief_dim, cfg.num_processes, cfg.policy_gamma, **on,
        **{f"weight_{k}": getattr(cfg, f"weight_exploration_bonus_{k}") for k in BONUS_NAMES},
        state_expl_idx=cfg.state_expl_idx, anneal=cfg.anneal_exploration_bonus_weights,
        clip=cfg.intrinsic_rew_clip_rewards, rnd_lr=cfg.rnd_lr, rnd_output_dim=cfg.rnd_output_dim,
        rnd_prior_layers=cfg.rnd_prior_net_layers, rnd_predictor_layers=cfg.rnd_predictor_net_layers,
        rnd_init_weight_scale=cfg.rnd_init_weight_scale, rnd_norm_inputs=cfg.rnd_norm_inputs, device=device)


def vae_error_fn(vae, posteriors, prev_obs, actions, next_obs, rewards, tasks, generator=None):
    """The VAE-error bonus of transitions [T, N] as a callable (computed only if that bonus is on)."""
    z = vae.cfg.latent_dim
    return lambda: vae.transition_error(posteriors[..., :z], posteriors[..., z:], prev_obs, actions, next_obs, rewards, tasks,
                                        generator=generator)


class HyperX(Component):
    state_key = "bonus"

    @staticmethod
    def wanted(cfg) -> bool:
        return any(getattr(cfg, f"exploration_bonus_{k}") for k in BONUS_NAMES)

    def __init__(self, cfg, spec, agent, device, env=None):
        self.cfg, self.agent = cfg, agent
        self.bonus = build_bonus(cfg, spec, device)

    def storage_dims(self) -> dict[str, int]:
        cfg, vae = self.cfg, self.agent.vae
        need_belief = self.bonus.uses_beliefs or cfg.exploration_bonus_vae_error
        return {"posterior": 2 * cfg.latent_dim if vae is not None and need_belief else 0,
                "next_belief": self.agent.spec.belief_dim if vae is None and self.bonus.uses_beliefs else 0,
                "task": self.agent.spec.task_dim if cfg.exploration_bonus_vae_error and cfg.decode_task else 0}

    def after_rollout(self, trainer) -> dict:
        """Add the bonus to the rollout's rewards and train the RND predictors. No pretraining
        iteration: the first call is a normal one."""
        cfg, s = self.cfg, trainer.storage
        self.bonus.set_progress(trainer.frames, cfg.num_frames)
        beliefs = s.extras.get("posterior", s.extras.get("next_belief"))
        vae_error = None
        if cfg.exploration_bonus_vae_error:
            actions = self.agent.encoder_action(s.actions).reshape(s.num_steps, s.num_envs, -1)
            vae_error = vae_error_fn(self.agent.vae, s.extras["posterior"], s.inputs["state"][:-1], actions, s.next_obs,
                                     s.rewards_raw, s.extras.get("task"))
        with torch.no_grad():
            total, stats = self.bonus.compute(s.next_obs, beliefs, s.dones, vae_error=vae_error)
            s.rewards += total
            rnd_batch = self._rnd_batch(s) if self.bonus.rnds and trainer.iter % cfg.rnd_update_frequency == 0 else None
        if rnd_batch is not None:
            stats.update(self.bonus.update_rnd(*rnd_batch))
        return {"exploration": stats}

    def _rnd_batch(self, s):
        """Hyper-states to train the RND on: from the VAE buffer, re-encoded with the current
        encoder (k trajectories x k steps, k = sqrt(rnd_batch_size)); without a VAE (oracles)
        a random subset of the last rollout."""
        cfg, vae = self.cfg, self.agent.vae
        if vae is not None and vae.buffer.size > 0:
            k = max(1, int(cfg.rnd_batch_size ** 0.5))
            b = vae.buffer.sample(k, vae.generator)
            post = vae.encoder(b.actions, b.next_obs, b.rewards, return_prior=True, prev_states=b.prev_obs)
            t = (torch.rand(k, k, generator=vae.generator).to(b.lengths.device) * b.lengths).long()  # [k, B]
            cols = torch.arange(k, device=t.device).expand(k, k)
            beliefs = torch.cat([post.mean[t + 1, cols], post.logvar[t + 1, cols]], -1)
            return b.next_obs[t, cols].reshape(k * k, -1), beliefs.reshape(k * k, -1)
        idx = torch.randperm(s.num_steps * s.num_envs, device=s.next_obs.device)[:cfg.rnd_batch_size]
        beliefs = s.extras.get("posterior", s.extras.get("next_belief"))
        flat = lambda x: None if x is None else x.reshape(-1, x.shape[-1])[idx]  # noqa: E731
        return flat(s.next_obs), flat(beliefs)

    def state_dict(self) -> dict:
        return self.bonus.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.bonus.load_state_dict(state)
