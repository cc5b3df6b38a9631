"""ReId's dream environments (Rimon et al. 2022) as a component of the VariBAD loop.

The last ``num_dream_envs`` copies of the training batch become dream copies from update
``delay_dream`` on: their task is a latent z drawn from a density fitted to posterior latents
(Gaussian KDE, Dirichlet mixup, or the prior), their reward the VAE reward decoder at (z, s, a,
s'), their transitions the real simulator of the env-type where tasks differ in reward only
(any env-type, not only the point robot the reference hard-codes) and the VAE state decoder at
(z, s, a) where they differ in dynamics (``MetaEnv.task_changes``; needs ``--decode_state``).
The policy never sees z: it acts on the state and its own belief, and dream and real copies
share one PPO batch. Per iteration (``after_rollout``, a fixed point where no VAE update runs):

    1. the real copies' full-trajectory posteriors at BAMDP ends go into the latent pools
       (the reference encoded the last transition alone from a reset hidden state; here the
       posterior b_{t+1} of the whole BAMDP, before the encoder's reset, is used)
    2. every ``update_kde_interval`` updates: refit the density, take a snapshot of the reward
       decoder (``clone_dream_vae``: only the first time), give both to the dream env
Dream transitions stay out of the VAE buffer unless ``train_vae_on_dream``; dream and real
rewards, the pool size and the KDE bandwidth are logged under ``dreams/``. A dream copy switched
on in the middle of a BAMDP keeps its real task until that BAMDP ends.
"""
from __future__ import annotations

import torch

from components.base import Component
from config.options_dreams import latent_sampler_kind
from dreams.decoder_reward import decoder_reward_fn, snapshot
from dreams.dream_env import DreamEnv
from dreams.pool import LatentPool, latents_for_fit
from dreams.samplers import make_sampler, parse_bandwidth


class DreamEnvs(Component):
    state_key = "dreams"

    @staticmethod
    def wanted(cfg) -> bool:
        return cfg.num_dream_envs > 0

    def __init__(self, cfg, spec, agent, device, env):
        if env.env.obs_dim + (cfg.max_rollouts_per_task > 1) != spec.obs_dim:
            raise ValueError("dream envs: the BAMDP observation is not the env observation (+ done flag)")
        self.cfg, self.agent, self.vae = cfg, agent, agent.vae
        self.pooled = env.env if hasattr(env.env, "pool_index") else None  # the finite task pool, if any
        self.dream = DreamEnv(env.env, reward_fn=None, latent_dim=cfg.latent_dim,
                              dream_mask=torch.zeros(env.num_envs, dtype=torch.bool, device=env.device),
                              add_done_info=cfg.max_rollouts_per_task > 1)
        env.env = self.dream  # the BAMDP now steps the dream env
        self.mask = torch.arange(env.num_envs, device=env.device) >= env.num_envs - cfg.num_dream_envs
        z = cfg.latent_dim
        self.running = LatentPool(z, capacity=cfg.kde_pool_size, refit_every=cfg.update_kde_interval)
        self.per_task = (LatentPool(z, num_keys=self.pooled.num_goals)
                         if self.pooled is not None and cfg.kde_from_train else None)
        if getattr(env.env, "task_changes", "reward") == "dynamics":
            if self.vae.state_decoder is None:
                raise ValueError(f"dream envs on {cfg.env_name}: its tasks differ in dynamics, so dream transitions "
                                 "come from the VAE state decoder: add --decode_state true")
            self.dynamics = True  # transitions from a snapshot of the state decoder
        else:
            self.dynamics = False  # transitions from the real simulator (tasks differ in reward only)
        self.decoder = self.state_decoder = None  # snapshots the dreams are rewarded (and moved) by
        self.started = False
        if not cfg.train_vae_on_dream:
            self.vae.buffer.store_mask = ~self.mask

    def storage_dims(self) -> dict[str, int]:
        return {"posterior": 2 * self.cfg.latent_dim, "task": self.agent.spec.task_dim if self.per_task is not None else 0}

    def after_rollout(self, trainer) -> dict:
        cfg, s, z = self.cfg, trainer.storage, self.cfg.latent_dim
        ends = s.dones & ~self.dream.dream_mask[None]  # BAMDP ends of real copies in this rollout
        means = s.extras["posterior"][..., :z][ends]
        if cfg.kde_from_running_latents:
            self.running.add(means)
        if self.per_task is not None:
            self.per_task.add(means, keys=self.pooled.pool_index(s.extras["task"][ends]))
        it = trainer.iter  # updates done before this one; the dreams start with the rollout after update delay_dream
        if it + 1 >= (cfg.delay_dream or 0) and self.running.due(it):
            self._refit(it, trainer.cfg.seed)
        dream = self.dream.dream_mask
        stats = {"running_pool_size": float(len(self.running)), "dreaming_copies": float(dream.sum()),
                 "real_reward_per_step": float(s.rewards_raw[:, ~dream].mean())}
        if bool(dream.any()):
            stats["dream_reward_per_step"] = float(s.rewards_raw[:, dream].mean())
        factor = getattr(self.dream.sampler, "factor", None)
        if factor is not None:
            stats["kde_bandwidth_factor"] = float(factor)
        return {"dreams": stats}

    @torch.no_grad()
    def _oracle_latents(self, seed: int) -> torch.Tensor | None:
        """Posterior means after one scripted episode per training task (ReId's ``kde_from_train``),
        where the env-type has an expert (``oracle_action``); None where it has none."""
        from environments.registry import make_env

        cfg, tasks = self.cfg, self.pooled.train_tasks
        env = make_env(cfg.env_name, len(tasks), seed=seed, device=self.mask.device, **cfg.env_kwargs)
        if not hasattr(env, "oracle_action"):
            return None
        obs = env.reset(tasks=tasks.to(env.device))
        flag = torch.zeros(len(tasks), 1, device=env.device) if cfg.max_rollouts_per_task > 1 else None
        with_flag = (lambda o: o) if flag is None else (lambda o: torch.cat([o, flag], 1))  # noqa: E731
        steps = {"prev": [], "actions": [], "rewards": [], "next": []}
        for _ in range(env.max_episode_steps):
            action = env.oracle_action()
            next_obs, reward, _, _, _ = env.step(action)
            for key, val in (("prev", with_flag(obs)), ("actions", action), ("rewards", reward[:, None]),
                             ("next", with_flag(next_obs))):
                steps[key].append(val)
            obs = next_obs
        st = {k: torch.stack(v) for k, v in steps.items()}
        post = self.vae.encoder(st["actions"], st["next"], st["rewards"], return_prior=True, prev_states=st["prev"])
        return post.mean[-1]

    def _refit(self, it: int, seed: int) -> None:
        cfg = self.cfg
        running = self.running if cfg.kde_from_running_latents else None
        if self.per_task is not None and (running is None or len(running) <= cfg.latent_dim):
            oracle = self._oracle_latents(seed + it)  # ReId: scripted trajectories on the training tasks
            if oracle is not None:
                self.per_task.add(oracle.cpu(), keys=torch.arange(len(oracle)))
        latents, _ = latents_for_fit(running, self.per_task, min_latents=cfg.latent_dim + 1)
        kind = latent_sampler_kind(cfg) if latents is not None else "prior"
        sampler = make_sampler(kind, latents, latent_dim=cfg.latent_dim, bandwidth=parse_bandwidth(cfg.kde_bandwidth),
                               alpha=cfg.mixup_alpha, seed=seed * 1000 + it)
        self.running.mark_fitted(it)  # a FIFO of the latest kde_pool_size latents (ReId: cleared at each fit)
        if self.decoder is None or not cfg.clone_dream_vae:
            self.decoder = snapshot(self.vae.reward_decoder)
            self.state_decoder = snapshot(self.vae.state_decoder) if self.dynamics else None
        self._install()
        self.dream.set_sampler(sampler)
        if not self.started:
            self.dream.set_dream_mask(self.mask)
            self.started = True

    def _install(self) -> None:
        scale = (lambda: self.vae.buffer.reward_absmax) if self.cfg.normalise_rew_targets else None
        self.dream.reward_fn = decoder_reward_fn(self.decoder, scale=scale)
        if self.dynamics:
            self.dream.state_fn = lambda z, prev_obs, action: self.state_decoder(z, prev_obs, action)

    def visualise(self, trainer, folder: str, iteration: int) -> None:
        """Point robots: the reward the decoder gives at dream latents over the plane, next to the
        real training and held-out goals (``<iter>_dream_rewards.png``)."""
        inner = self.dream.inner
        if self.decoder is None or self.dream.sampler is None or self.agent.spec.task_dim != 2 or \
                not hasattr(inner, "goal_sampler"):
            return
        from dreams.plots import plot_dream_rewards

        latents = self.dream.sampler.sample(6, torch.Generator().manual_seed(iteration))
        pool = self.pooled
        plot_dream_rewards(self.dream.reward_fn, latents, f"{folder}/{iteration}_dream_rewards.png",
                           train_goals=pool.train_tasks if pool is not None else None,
                           eval_goals=pool.eval_tasks if pool is not None else None,
                           obs_dim=self.agent.spec.obs_dim, action_dim=self.agent.spec.action_dim,
                           full_circle=getattr(inner, "goal_sampler", "") == "circle")

    def state_dict(self) -> dict:
        return {"running": self.running.state_dict(),
                "per_task": self.per_task.state_dict() if self.per_task is not None else None,
                "decoder": self.decoder.state_dict() if self.decoder is not None else None, "started": self.started,
                "state_decoder": self.state_decoder.state_dict() if self.dynamics and self.decoder is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.running.load_state_dict(state["running"])
        if self.per_task is not None:
            self.per_task.load_state_dict(state["per_task"])
        self.started = state["started"]
        if state["decoder"] is not None:
            self.decoder = snapshot(self.vae.reward_decoder)
            self.decoder.load_state_dict(state["decoder"])
            if self.dynamics:
                self.state_decoder = snapshot(self.vae.state_decoder)
                self.state_decoder.load_state_dict(state["state_decoder"])
            self._install()
