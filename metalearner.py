"""MetaLearner: the VariBAD-family trainer, one on-policy loop.

VariBAD, RL2, Humplik task decoding, the belief/multitask oracles and hypernetwork policies
are options of this loop; HyperX bonuses, task-inference supervision and the RL loss through
the encoder are components (``components/``) that it calls through hooks. One iteration:

    1. components' before_iteration hooks
    2. collect_rollout: re-encode every copy's unfinished BAMDP trajectory with the current
       encoder, then ``policy_num_steps`` steps of all copies (the agent acts on state + belief)
    3. update, once ``precollect_len`` frames are in: components' after_rollout hooks (reward
       shaping), GAE returns, ``num_vae_updates`` VAE steps (overlapping the next rollout), a
       PPO/A2C update with the components' extra losses, the policy input normalisers

Run dir, reporting, evaluation schedule, checkpoints, NaN guard and callbacks: ``trainers.base``.
"""
from __future__ import annotations

import os
from types import SimpleNamespace

import torch

from agent import Agent, build_policy, latent_size, policy_input_dims
from models.policy import ActResult
from algorithms.ppo import PolicyUpdater
from algorithms.storage import RolloutStorage, compute_gae
from components import build_components
from components.task_inference import vae_target_dim
from environments.bamdp import build_env
from trainers.base import Interrupted, NonFiniteError, Trainer  # noqa: F401  (main imports them from here)
import evaluation
from utils import plotting
from utils.running_stats import ReturnNormaliser
from utils.spec import RunSpec


class MetaLearner(Trainer):
    # ---------------------------------------------------------------- construction
    def build(self) -> None:
        cfg = self.cfg
        self.env = build_env(cfg, cfg.num_processes, cfg.seed, self.device)
        self.spec = RunSpec.from_env(self.env, cfg)
        ti_dim = vae_target_dim(cfg, self.spec, build_policy)
        self.agent = Agent.build(cfg, self.spec, self.env, self.device, task_target_dim=ti_dim)
        self.policy, self.vae = self.agent.policy, self.agent.vae
        self.updater = self.make_updater()
        self.components = build_components(cfg, self.spec, self.agent, self.device, self.env)
        extras = {k: d for c in self.components for k, d in c.storage_dims().items()}
        dims = {**policy_input_dims(cfg, self.spec), "state": self.spec.obs_dim,
                "latent": latent_size(cfg) if self.vae else 0}
        self.storage = RolloutStorage(cfg.policy_num_steps, cfg.num_processes, dims, (
            () if self.spec.discrete else (self.spec.action_dim,)), self.spec.discrete,
            self.vae.encoder.hidden_size if self.vae else 1, self.device, extra_dims=extras)
        self.env.record_belief = "next_belief" in self.storage.extras
        self.env.record_task = "task" in self.storage.extras or bool(self.vae and self.vae.decode_task)
        self.rew_norm = ReturnNormaliser(cfg.num_processes, cfg.policy_gamma, cfg.norm_rew_clip_param, device=self.device,
                                         stats="per_rollout")
        self.vae_pretrained = False
        self.obs = self.env.reset()

    def make_updater(self) -> PolicyUpdater:
        cfg = self.cfg
        return PolicyUpdater(
            self.policy, cfg.policy, lr=cfg.lr_policy, eps=cfg.policy_eps, optimiser=cfg.policy_optimiser,
            epochs=cfg.ppo_num_epochs, minibatches=cfg.ppo_num_minibatch, clip=cfg.ppo_clip_param,
            value_coef=cfg.policy_value_loss_coef, entropy_coef=cfg.policy_entropy_coef,
            max_grad_norm=cfg.policy_max_grad_norm, huber=cfg.ppo_use_huberloss,
            clipped_value=cfg.ppo_use_clipped_value_loss,
            anneal_updates=self.spec.num_updates if cfg.policy_anneal_lr else None,
            minibatch_by_env=cfg.ppo_minibatch_by_env)

    def component(self, cls):
        """The active component of type ``cls`` (None if the config does not use it)."""
        return next((c for c in self.components if isinstance(c, cls)), None)

    @property
    def num_iterations(self) -> int:
        return self.spec.num_updates

    # ---------------------------------------------------------------- the loop
    def train_iteration(self) -> dict:
        for c in self.components:
            c.before_iteration(self)
        self.collect_rollout()
        return self.update()

    @torch.inference_mode()
    def collect_rollout(self) -> None:
        run = self.rollout_begin()
        act_fn = self.agent.acting()  # Policy.act as one function for this rollout (bit for bit equal)
        for _ in range(self.cfg.policy_num_steps):
            step = self.rollout_env_step(act_fn(run.inputs))
            if run.encode is not None:
                step.belief = run.encode.step_flat(run.hidden, step.enc_action, step.next_obs, step.reward, self.obs,
                                                   step.done, step.any_done)
            self.rollout_record(run, step)
        self.rollout_end()

    # The rollout's named steps; a --num_seeds run (trainers/multi_seed.py) calls them for every
    # member around one batched act and one batched belief step.
    def rollout_begin(self, belief_updater: bool = True) -> SimpleNamespace:
        """Re-encode every copy's unfinished BAMDP trajectory; store the first inputs."""
        agent, vae, s = self.agent, self.vae, self.storage
        latent = hidden = encode = None
        if vae is not None:
            belief = vae.encode_running()
            latent, hidden = agent.latent(belief), belief.hidden
            if belief_updater:
                encode = agent.belief_updater(self.cfg.num_processes)
        inputs = agent.inputs(self.env, self.obs, latent)
        s.set_first(inputs, hidden)
        return SimpleNamespace(inputs=inputs, hidden=hidden, encode=encode,
                               want=[k for k in ("next_belief", "task") if k in s.extras],  # what components asked for
                               want_post="posterior" in s.extras)

    def rollout_env_step(self, act: ActResult, stepped: tuple | None = None) -> SimpleNamespace:
        """Step the envs with the chosen actions (``stepped``: this run's (obs, reward, done, info,
        any_done) where a --num_seeds run stepped all seeds' envs as one group)."""
        obs, reward, done, info, any_done = stepped or (*self.env.step(act.env_action), getattr(self.env, "any_done", None))
        if self.vae is not None and any_done is None:  # (the BAMDP wrapper knows it without a second sync)
            any_done = bool(done.any())
        return SimpleNamespace(act=act, obs=obs, reward=reward, done=done, info=info, next_obs=info["next_obs"],
                               enc_action=self.agent.encoder_action(act.action), belief=None,
                               any_done=any_done if self.vae is not None else None)

    def rollout_record(self, run: SimpleNamespace, step: SimpleNamespace) -> None:
        """Store the step (rollout storage, VAE buffer) and assemble what the policy sees next.
        ``step.belief``: the belief step's (belief b_{t+1} after task resets as cat([mean,
        logvar], -1), its hidden state, the posterior before the resets, its hidden state)."""
        agent, s, info = self.agent, self.storage, step.info
        extras = {k: info[k] for k in run.want}
        latent = None
        if self.vae is not None:
            flat, run.hidden, post, _ = step.belief
            if run.want_post:
                extras["posterior"] = post
            latent = agent.latent_flat(flat)
            # one host sync per step, the env's (on GPU too)
            self.vae.buffer.insert(self.obs, step.enc_action, step.reward, step.next_obs, info["task"], step.done,
                                   step.any_done)
        self.obs = step.obs
        run.inputs = agent.inputs(self.env, step.obs, latent)  # what the policy sees next; also stored
        s.insert(inputs=run.inputs, hidden=run.hidden, next_obs=step.next_obs, action=step.act.action,
                 reward_raw=step.reward, reward=step.reward, done=step.done, trunc=info["bamdp_truncated"], extras=extras)
        self.frames += self.cfg.num_processes

    def rollout_end(self) -> None:
        """Values and log-probs of the whole rollout; reward normalisation; the acting encoder catches up."""
        s, vae = self.storage, self.vae
        s.evaluate_policy(self.policy)  # values and log-probs, one batched pass
        if self.cfg.norm_rew_for_policy:
            s.rewards.copy_(self.rew_norm(s.rewards_raw, s.dones))
        if vae is not None:
            # with overlapped VAE updates: wait for the one that ran during this rollout and let
            # the acting encoder catch up -- a fixed point in the loop, so runs stay deterministic
            vae.sync_acting_encoder()

    def update(self) -> dict:
        return self.update_policy(self.update_begin())

    def update_begin(self) -> tuple[dict, dict] | None:
        """The update up to the policy step: components' rollout hooks (bonuses), GAE returns,
        and the VAE update (with overlap handed to its thread). None before precollection ends."""
        cfg, vae, s = self.cfg, self.vae, self.storage
        if self.frames < cfg.precollect_len:
            return None
        stats: dict = {}
        if vae is not None and cfg.pretrain_len and not self.vae_pretrained and vae.ready():
            stats["vae_pretrain"], self.vae_pretrained = vae.pretrain(cfg.pretrain_len), True
        for c in self.components:
            stats.update(c.after_rollout(self))
        with torch.no_grad():
            s.returns = compute_gae(s.rewards, s.values, s.dones, s.truncs, cfg.policy_gamma, cfg.policy_tau,
                                    cfg.policy_use_gae, cfg.use_proper_time_limits)
        kwargs = {k: v for c in self.components for k, v in c.update_kwargs(self).items()}
        if vae is not None and vae.ready() and cfg.num_vae_updates:
            vae.update(cfg.num_vae_updates)  # with overlap this runs during PPO and the next rollout
        return stats, kwargs

    def update_policy(self, begun: tuple[dict, dict] | None, policy_stats: dict | None = None) -> dict:
        """The policy step (``policy_stats``: already taken, with all seeds of a --num_seeds run); normalisers."""
        if begun is None:
            return {}
        (stats, kwargs), vae, s = begun, self.vae, self.storage
        stats["policy"] = self.updater.update(s, **kwargs) if policy_stats is None else policy_stats
        if vae is not None and vae.last_stats:
            stats["vae"] = vae.last_stats  # with overlap: the update that finished during this rollout
        self.policy.update_normalisers({k: v[:-1] for k, v in s.inputs.items()})
        return stats

    # ---------------------------------------------------------------- evaluation and logs
    def _bonus(self):
        from components.hyperx import HyperX

        hyperx = self.component(HyperX)
        return hyperx.bonus if hyperx is not None else None

    def evaluate(self) -> dict:
        return evaluation.evaluate_task_sets(self.agent, seed=self.cfg.seed * 42 + self.iter, bonus=self._bonus())

    def visualise(self) -> None:
        trace = evaluation.single_rollout(self.agent, seed=self.cfg.seed * 42 + self.iter + 7, bonus=self._bonus())
        plotting.plot_behaviour(self.agent, self.env.env, trace, f"{self.run_dir}/plots", self.iter)
        for c in self.components:
            c.visualise(self, f"{self.run_dir}/plots", self.iter)

    def log_diagnostics(self) -> None:
        add, it, s = self.reporter.add, self.iter, self.storage
        for name, value in (("environment/state_max", s.next_obs.max()), ("environment/state_min", s.next_obs.min()),
                            ("environment/rew_max", s.rewards_raw.max()), ("environment/rew_min", s.rewards_raw.min()),
                            ("policy/value", s.values.mean()), ("policy/action_logprob", s.log_probs.mean())):
            add(name, value, it)
        if not self.spec.discrete:
            add("policy/action_logstd", self.policy.logstd.detach().mean(), it)
        if "latent" in s.inputs:
            z = self.cfg.latent_dim
            add("encoder/latent_mean", s.inputs["latent"][..., :z].mean(), it)
            if not self.cfg.sample_embeddings:
                add("encoder/latent_logvar", s.inputs["latent"][..., z:].mean(), it)

    # ---------------------------------------------------------------- checkpoints
    def _buffer_folder(self) -> str:
        return os.path.join(self.run_dir, "checkpoints", "vae_buffer")

    def trainer_state(self) -> dict:
        if self.vae is not None:  # a VAE update may still run on its thread: its loss is checked first
            self.check_finite({"vae": self.vae.wait()})
        if self.vae is not None and self.vae.buffer.capacity and not self.cfg.checkpoint_vae_buffer:
            self.vae.buffer.save_segments(self._buffer_folder(), keep=self.cfg.keep_checkpoints + 1)
        state = {"vae_pretrained": self.vae_pretrained, **self.agent.state_dict(self.cfg.checkpoint_vae_buffer),
                 "updater": self.updater.state_dict(), "bonus": None, "rew_norm": self.rew_norm.state_dict(),
                 "env": self.env.state_dict(), "obs": self.obs.clone()}
        state.update({c.state_key: c.state_dict() for c in self.components if c.state_key})
        return state

    def load_trainer_state(self, state: dict) -> None:
        self.vae_pretrained = state["vae_pretrained"]
        self.agent.load_state_dict(state)
        if self.vae is not None and self.vae.buffer.capacity and "data" not in state["vae"]["buffer"]:
            self.vae.buffer.load_segments(self._buffer_folder())
        self.updater.load_state_dict(state["updater"])
        self.updater.set_lr(self.cfg.lr_policy)  # a resume may lower the learning rates (NaN recovery)
        if self.vae is not None:
            self.vae.set_lr(self.cfg.lr_vae)
        for c in self.components:
            if c.state_key:
                c.load_state_dict(state[c.state_key])
        self.rew_norm.load_state_dict(state["rew_norm"])
        self.env.load_state_dict(state["env"])
        self.obs = state["obs"].to(self.device)
