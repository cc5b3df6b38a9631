"""MetaLearner: the one on-policy meta-training loop.

VariBAD, RL2, Humplik task decoding and the belief/multitask oracles are options of this
loop, not copies of it. One iteration:

    1. re-encode every copy's unfinished BAMDP trajectory with the current encoder
    2. collect ``policy_num_steps`` steps from all copies (policy acts on state + belief)
    3. once ``precollect_len`` frames are in: GAE returns, a PPO/A2C update, then
       ``num_vae_updates`` VAE steps on trajectories from the VAE buffer
    4. update the policy input normalisers; log / evaluate / plot / checkpoint on schedule
"""
from __future__ import annotations

import math
import os

import torch

from algorithms.ppo import PolicyUpdater
from algorithms.storage import RolloutStorage, compute_gae
from config.loader import Config
from environments import make_env
from environments.base import MetaEnv
from environments.bamdp import BAMDPWrapper
from exploration.bonus import ExplorationBonus
from models.hypernet import HyperActorCritic
from models.policy import Policy
from utils import evaluation, plotting
from utils.checkpoint import load_checkpoint, save_checkpoint
from utils.logger import Logger, Progress, save_json
from utils.running_stats import RewardNormaliser
from utils.seeding import pick_device, rng_state, seed_everything, set_rng_state, set_threads
from utils.spec import RunSpec
from vae import VAE


class NonFiniteError(RuntimeError):
    """A loss or statistic became NaN/inf; the message says where."""


def build_env(cfg: Config, num_envs: int, seed: int, device) -> BAMDPWrapper:
    env = make_env(cfg.env_name, num_envs=num_envs, seed=seed, device=device, **cfg.env_kwargs)
    return BAMDPWrapper(env, cfg.max_rollouts_per_task)


def build_policy(cfg: Config, spec: RunSpec, device) -> Policy:
    z = cfg.latent_dim if cfg.sample_embeddings else 2 * cfg.latent_dim
    dims = {"state": spec.obs_dim * cfg.pass_state_to_policy,
            "latent": z * (cfg.pass_latent_to_policy and not cfg.disable_metalearner),
            "belief": spec.belief_dim * cfg.pass_belief_to_policy,
            "task": policy_task_dim(cfg, spec) * cfg.pass_task_to_policy}
    if cfg.pass_belief_to_policy and not spec.belief_dim:
        raise ValueError(f"--pass_belief_to_policy: env {cfg.env_name} has no exact belief")
    parts = ("state", "latent", "belief", "task")
    body_fn = cond_part = None
    if cfg.use_hypernet:
        cond_part = cfg.hypernet_input
        generated = None if cfg.policy_layers_hyper is None else [bool(x) for x in cfg.policy_layers_hyper]
        if generated is not None and len(generated) != len(cfg.policy_layers) + 1:
            raise ValueError(f"--policy_layers_hyper needs {len(cfg.policy_layers) + 1} entries (hidden layers + head)")
        body_fn = lambda base_dim, cond_dim: HyperActorCritic(  # noqa: E731
            base_dim, cond_dim, cfg.policy_layers, spec.num_actions, cfg.policy_activation_function.replace("-", "_"),
            cfg.hypernet_layers, generated, cfg.hypernet_head_bias, cfg.hypernet_init, cfg.use_film,
            0.01 if spec.discrete else 1.0)
    return Policy(dims, spec.num_actions, spec.discrete, cfg.policy_layers, cfg.policy_activation_function,
                  cfg.policy_initialisation,
                  embed_dims={p: getattr(cfg, f"policy_{p}_embedding_dim") for p in parts},
                  normalise={p: getattr(cfg, f"norm_{p}_for_policy") for p in parts},
                  init_std=cfg.policy_init_std, tanh_mean=cfg.norm_actions_pre_sampling,
                  tanh_squash=cfg.norm_actions_post_sampling, body_fn=body_fn, cond_part=cond_part,
                  task_substitutes_latent=bool(cfg.task_num_warmup or cfg.ti_coeff is not None)).to(device)


def policy_task_dim(cfg: Config, spec: RunSpec) -> int:
    if not cfg.pass_task_as_onehot_id:
        return spec.task_dim
    if not spec.num_tasks:
        raise ValueError(f"--pass_task_as_onehot_id: env {cfg.env_name} has no finite set of tasks")
    return spec.num_tasks


def task_input(cfg: Config, env: BAMDPWrapper, task: torch.Tensor) -> torch.Tensor:
    """The task as the policy sees it: its description or a one-hot task id."""
    if not cfg.pass_task_as_onehot_id:
        return task
    return torch.nn.functional.one_hot(env.task_to_id(task), env.num_tasks).to(task.dtype)


def ti_target_dim(cfg: Config, spec: RunSpec) -> int:
    """Size of the task-inference target: the task embedding, or (BI++HN) all generated
    base-net parameters, counted on a probe policy built without touching the global RNG."""
    if cfg.ti_target == "task":
        return cfg.policy_task_embedding_dim
    with torch.random.fork_rng(devices=[]):
        probe = build_policy(cfg, spec, "cpu")
    return probe.body.generated_params(None, torch.zeros(1, probe.body.cond_dim)).shape[-1]


def policy_inputs(cfg: Config, env: BAMDPWrapper, obs, latent=None) -> dict[str, torch.Tensor]:
    """Everything the policy may look at; it picks the parts it was built for."""
    inputs = {"state": obs}
    if latent is not None:
        inputs["latent"] = latent
    if cfg.pass_belief_to_policy:
        inputs["belief"] = env.get_belief()
    if cfg.pass_task_to_policy:
        inputs["task"] = task_input(cfg, env, env.get_task())
    return inputs


def build_exploration(cfg: Config, spec: RunSpec, device) -> ExplorationBonus | None:
    """HyperX bonuses on (s_{t+1}, b_{t+1}); b is the VAE posterior (mean, logvar) or, for
    the oracles, the env's exact belief."""
    kinds = ("hyperstate", "state", "belief", "vae_error")
    on = {k: getattr(cfg, f"exploration_bonus_{k}") for k in kinds}
    if not any(on.values()):
        return None
    belief_dim = spec.belief_dim if cfg.disable_metalearner else 2 * cfg.latent_dim
    if (on["hyperstate"] or on["belief"]) and not belief_dim:
        raise ValueError("the hyper-state/belief bonus needs a belief: an encoder or an env with an exact belief")
    if on["vae_error"] and (cfg.disable_metalearner or cfg.disable_decoder):
        raise ValueError("--exploration_bonus_vae_error needs the VAE decoders")
    return ExplorationBonus(
        spec.obs_dim, belief_dim, cfg.num_processes, cfg.policy_gamma, **on,
        **{f"weight_{k}": getattr(cfg, f"weight_exploration_bonus_{k}") for k in kinds},
        state_expl_idx=cfg.state_expl_idx, anneal=cfg.anneal_exploration_bonus_weights,
        clip=cfg.intrinsic_rew_clip_rewards, rnd_lr=cfg.rnd_lr, rnd_output_dim=cfg.rnd_output_dim,
        rnd_prior_layers=cfg.rnd_prior_net_layers, rnd_predictor_layers=cfg.rnd_predictor_net_layers,
        rnd_init_weight_scale=cfg.rnd_init_weight_scale, rnd_norm_inputs=cfg.rnd_norm_inputs, device=device)


class MetaLearner:
    def __init__(self, cfg: Config, run_dir: str, resume: bool = False):
        self.cfg, self.run_dir = cfg, run_dir
        set_threads(cfg.num_threads)
        seed_everything(cfg.seed, cfg.deterministic_execution)
        self.device = pick_device(cfg.device)
        self.env = build_env(cfg, cfg.num_processes, cfg.seed, self.device)
        self.spec = RunSpec.from_env(self.env, cfg)
        inner = self.env.env
        to_id = getattr(inner, "cell_id", None)
        task_id = inner.task_to_id if type(inner).task_to_id is not MetaEnv.task_to_id else None
        vae_cfg = cfg.section("vae", "encoder", "decoder")
        vae_ti = cfg.ti_coeff is not None and not cfg.rlloss_through_encoder
        if vae_ti:  # TI (VariBAD-based): the task decoder regresses the policy's task embedding
            vae_cfg.decode_task, vae_cfg.task_pred_type, vae_cfg.task_loss_coeff = True, "task_description", cfg.ti_coeff
        self.vae = None if cfg.disable_metalearner else VAE(
            self.spec, vae_cfg, cfg.num_processes, self.device, state_to_id=to_id, task_to_id=task_id, seed=cfg.seed,
            task_target_dim=ti_target_dim(cfg, self.spec) if vae_ti else None)
        self.policy = build_policy(cfg, self.spec, self.device)
        if vae_ti:
            # computed without gradients: a stop-gradient target
            self.vae.task_target_fn = lambda tasks: self._ti_target(task_input(cfg, self.env, tasks))
        self.updater = self._make_updater()
        self.bonus = build_exploration(cfg, self.spec, self.device)
        hidden = self.vae.encoder.hidden_size if self.vae else 1
        self.storage = RolloutStorage(cfg.policy_num_steps, cfg.num_processes, self._input_dims(), (
            () if self.spec.discrete else (self.spec.action_dim,)), self.spec.discrete, hidden, self.device,
            extra_dims=self._extra_dims())
        self.env.record_belief = "next_belief" in self.storage.extras
        self.env.record_task = "task" in self.storage.extras or bool(self.vae and self.vae.decode_task)
        self.rew_norm = RewardNormaliser(cfg.num_processes, cfg.policy_gamma, cfg.norm_rew_clip_param, self.device)
        self.iter, self.frames, self.vae_pretrained = 0, 0, False
        self.obs = self.env.reset()
        self.logger = Logger(run_dir, resume=resume)
        self.progress = Progress(cfg.num_frames, cfg.progress_bar)
        self.last_eval: dict = {}
        if resume:
            self._load(load_checkpoint(run_dir))
            self.progress = Progress(cfg.num_frames, cfg.progress_bar, start_frames=self.frames)
        else:
            save_json(cfg.to_dict(), os.path.join(run_dir, "config.json"))

    def _make_updater(self) -> PolicyUpdater:
        cfg = self.cfg
        return PolicyUpdater(
            self.policy, cfg.policy, cfg.lr_policy, cfg.policy_eps, cfg.policy_optimiser, cfg.ppo_num_epochs,
            cfg.ppo_num_minibatch, cfg.ppo_clip_param, cfg.policy_value_loss_coef, cfg.policy_entropy_coef,
            cfg.policy_max_grad_norm, cfg.ppo_use_huberloss, cfg.ppo_use_clipped_value_loss,
            self.spec.num_updates if cfg.policy_anneal_lr else None, cfg.ppo_minibatch_by_env)

    def _end_task_warmup(self) -> None:
        """TI: after the warm-up the policy conditions on the latent; with a hard reset every
        policy parameter except the task embedding is re-initialised (fresh optimiser too)."""
        if not self.cfg.ti_hard_reset:
            return
        fresh = build_policy(self.cfg, self.spec, self.device).state_dict()
        keep = {k: v for k, v in self.policy.state_dict().items() if k.startswith(("embedders.task", "normalisers.task"))}
        fresh.update(keep)
        self.policy.load_state_dict(fresh)
        self.updater = self._make_updater()

    def _ti_target(self, tasks: torch.Tensor) -> torch.Tensor:
        """Task-inference target for tasks as the policy sees them: the policy's task embedding,
        or (BI++HN) the base-net parameters the hypernetwork generates from it."""
        emb = self.policy.embed("task", tasks)
        return emb if self.cfg.ti_target == "task" else self.policy.body.generated_params(None, emb)

    def _ti_policy_loss(self, mb: dict[str, torch.Tensor]) -> torch.Tensor:
        """TI for RNN-based models: the embedded latent of a minibatch (with gradients into the
        encoder) regresses the stop-gradient target; BI++HN compares generated parameters."""
        pred = self.policy.embed("latent", mb["latent"])
        if self.cfg.ti_target == "base_net":
            pred = self.policy.body.generated_params(None, pred)
        with torch.no_grad():
            target = self._ti_target(mb["task"])
        return self.cfg.ti_coeff * (pred - target).pow(2).mean()

    # ---------------------------------------------------------------- the loop
    def train(self) -> dict:
        """Run until num_frames; returns the last evaluation."""
        if self.iter == 0:
            self._evaluate_and_plot()  # the untrained policy, for the curves' first point
        while self.iter < self.spec.num_updates:
            if self.cfg.task_num_warmup and self.iter == self.cfg.task_num_warmup and self.policy.use_task:
                self._end_task_warmup()
            self.policy.use_task = self.iter < self.cfg.task_num_warmup
            self.collect_rollout()
            stats = self.update()
            self.iter += 1
            self._on_iteration_end(stats)
        self.save()
        self.progress.close()
        self.logger.close()
        return self.last_eval

    # ---------------------------------------------------------------- rollouts
    def _input_dims(self) -> dict[str, int]:
        z = self.cfg.latent_dim if self.cfg.sample_embeddings else 2 * self.cfg.latent_dim
        return {"state": self.spec.obs_dim, "latent": z if self.vae else 0,
                "belief": self.spec.belief_dim if self.cfg.pass_belief_to_policy else 0,
                "task": policy_task_dim(self.cfg, self.spec) if self.cfg.pass_task_to_policy else 0}

    def _extra_dims(self) -> dict[str, int]:
        """Per-step data only the exploration bonuses need."""
        if self.bonus is None:
            return {}
        need_belief = self.bonus.uses_beliefs or self.cfg.exploration_bonus_vae_error
        return {"posterior": 2 * self.cfg.latent_dim if self.vae and need_belief else 0,
                "next_belief": self.spec.belief_dim if not self.vae and self.bonus.uses_beliefs else 0,
                "task": self.spec.task_dim if self.cfg.exploration_bonus_vae_error and self.cfg.decode_task else 0}

    def _latent_input(self, mean, logvar):
        if self.cfg.sample_embeddings:
            lat = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        else:
            lat = torch.cat([mean, logvar], -1)
        return torch.relu(lat) if self.cfg.add_nonlinearity_to_latent else lat

    def _policy_inputs(self, latent=None) -> dict[str, torch.Tensor]:
        return policy_inputs(self.cfg, self.env, self.obs, latent)

    def _encoder_action(self, action: torch.Tensor) -> torch.Tensor:
        """What the encoder/VAE see of an action: the env action, as float [N, da]."""
        if self.spec.discrete:
            return action.float().reshape(-1, 1)
        return torch.tanh(action) if self.cfg.norm_actions_post_sampling else action

    def acting_refresh(self) -> None:
        """With overlapped VAE updates: wait for the one that ran during this rollout and let
        the policy's encoder catch up. A fixed point in the loop, so runs stay deterministic."""
        self.vae.sync_acting_encoder()

    @torch.inference_mode()
    def collect_rollout(self) -> None:
        cfg, vae = self.cfg, self.vae
        latent = hidden = None
        if vae is not None:
            mean, logvar, hidden = vae.encode_running()
            latent = self._latent_input(mean, logvar)
            encoder = vae.acting_encoder
            prior = encoder.prior(1)
            hidden0 = encoder.initial_hidden(cfg.num_processes, self.device)
        extras = {}
        inputs = self._policy_inputs(latent)
        self.storage.set_first(inputs, hidden)
        for _ in range(cfg.policy_num_steps):
            act = self.policy.act(inputs)
            obs, reward, done, info = self.env.step(act.env_action)
            any_done = bool(done.any())  # CPU: free; on GPU one sync per step (env already syncs)
            enc_action = self._encoder_action(act.action)
            if "next_belief" in self.storage.extras:
                extras["next_belief"] = info["next_belief"]
            if "task" in self.storage.extras:
                extras["task"] = info["task"]
            if vae is not None:
                post = encoder.step(enc_action, info["next_obs"], reward[:, None], hidden, prev_state=self.obs)
                if "posterior" in self.storage.extras:  # b_{t+1} of the ending task, before the reset
                    extras["posterior"] = torch.cat([post.mean, post.logvar], -1)
                new_task = done[:, None]  # the next observation belongs to a new task: prior
                hidden = torch.where(new_task, hidden0, post.hidden)
                latent = self._latent_input(torch.where(new_task, prior.mean, post.mean),
                                            torch.where(new_task, prior.logvar, post.logvar))
                vae.buffer.insert(self.obs, enc_action, reward, info["next_obs"], info["task"], done, any_done)
            self.obs = obs
            inputs = self._policy_inputs(latent)  # what the policy sees next; also stored
            self.storage.insert(inputs=inputs, hidden=hidden, next_obs=info["next_obs"],
                                action=act.action, reward_raw=reward,
                                reward=reward, done=done, trunc=info["bamdp_truncated"], extras=extras)
            self.frames += cfg.num_processes
        self.storage.evaluate_policy(self.policy)  # values and log-probs, one batched pass
        if cfg.norm_rew_for_policy:
            self.storage.rewards.copy_(self.rew_norm(self.storage.rewards_raw, self.storage.dones))
        if vae is not None:
            self.acting_refresh()

    # ---------------------------------------------------------------- updates
    def update(self) -> dict:
        cfg, vae = self.cfg, self.vae
        if self.frames < cfg.precollect_len:
            return {}
        stats: dict = {}
        if vae is not None and cfg.pretrain_len and not self.vae_pretrained and vae.ready():
            vae.update(cfg.pretrain_len)
            stats["vae_pretrain"] = vae.wait()
            self.acting_refresh()
            self.vae_pretrained = True
        if self.bonus is not None:
            stats["exploration"] = self._add_exploration_bonus()
        with torch.no_grad():
            self.storage.returns = compute_gae(
                self.storage.rewards, self.storage.values, self.storage.dones, self.storage.truncs,
                cfg.policy_gamma, cfg.policy_tau, cfg.policy_use_gae, cfg.use_proper_time_limits)
        kwargs = {}
        if vae is not None and cfg.rlloss_through_encoder:
            kwargs = dict(recompute_latent=self._recompute_latent, extra_optimiser=vae.optimiser,
                          extra_params=list(vae.encoder.parameters()),
                          extra_max_grad_norm=cfg.encoder_max_grad_norm)
            if vae.ready():
                kwargs["extra_loss"] = lambda: cfg.vae_loss_coeff * vae.loss(
                    vae.buffer.sample(cfg.vae_batch_num_trajs, vae.generator))[0]
            if cfg.ti_coeff is not None:
                kwargs["minibatch_loss"] = self._ti_policy_loss
        if vae is not None and vae.ready() and cfg.num_vae_updates:
            vae.update(cfg.num_vae_updates)  # with overlap this runs during PPO and the next rollout
        stats["policy"] = self.updater.update(self.storage, **kwargs)
        if vae is not None and vae.last_stats:
            stats["vae"] = vae.last_stats  # with overlap: the update that finished during this rollout
        self.policy.update_normalisers({k: v[:-1] for k, v in self.storage.inputs.items()})
        self._check_finite(stats)
        return stats

    def _add_exploration_bonus(self) -> dict:
        """Add the normalised, weighted, annealed HyperX bonus to the rollout's rewards and
        train the RND predictors. No pretraining iteration: the first call is a normal one."""
        cfg, s, z = self.cfg, self.storage, self.cfg.latent_dim
        self.bonus.set_progress(self.frames, cfg.num_frames)
        beliefs = s.extras.get("posterior", s.extras.get("next_belief"))
        vae_error = None
        if cfg.exploration_bonus_vae_error:
            post = s.extras["posterior"]
            actions = self._encoder_action(s.actions).reshape(s.num_steps, s.num_envs, -1)
            vae_error = lambda: self.vae.transition_error(  # noqa: E731
                post[..., :z], post[..., z:], s.inputs["state"][:-1], actions, s.next_obs, s.rewards_raw,
                s.extras.get("task"))
        with torch.no_grad():
            total, stats = self.bonus.compute(s.next_obs, beliefs, s.dones, vae_error=vae_error)
            s.rewards += total
            rnd_batch = self._rnd_batch() if self.bonus.rnds and self.iter % cfg.rnd_update_frequency == 0 else None
        if rnd_batch is not None:
            stats.update(self.bonus.update_rnd(*rnd_batch))
        return stats

    def _rnd_batch(self):
        """Hyper-states to train the RND on: from the VAE buffer, re-encoded with the current
        encoder (k trajectories x k steps, k = sqrt(rnd_batch_size)); without a VAE (oracles)
        a random subset of the last rollout."""
        cfg, vae, s = self.cfg, self.vae, self.storage
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

    def _recompute_latent(self, envs: torch.Tensor | None = None) -> torch.Tensor:
        """Policy latents [T, n, d] of the last rollout's env copies ``envs`` (None: all),
        recomputed WITH gradients (RL2)."""
        s = self.storage
        pick = (lambda x: x) if envs is None else (lambda x: x[:, envs])  # noqa: E731
        actions = self._encoder_action(s.actions).reshape(s.num_steps, s.num_envs, -1)
        post = self.vae.encoder.forward_with_resets(
            pick(actions), pick(s.next_obs), pick(s.rewards_raw[..., None]),
            s.hidden[0] if envs is None else s.hidden[0][envs], pick(s.dones),
            prev_states=pick(s.inputs["state"][:-1]))
        return self._latent_input(post.mean[:-1], post.logvar[:-1])

    def _check_finite(self, stats: dict) -> None:
        for group, values in stats.items():
            for key, val in values.items():
                if not math.isfinite(val):
                    raise NonFiniteError(
                        f"{group}/{key} is {val} at iteration {self.iter}, frame {self.frames} "
                        f"(env {self.cfg.env_name}, seed {self.cfg.seed}). Last checkpoint: "
                        f"{os.path.join(self.run_dir, 'checkpoints')}. Try a lower --lr_policy/--lr_vae.")

    # ---------------------------------------------------------------- logging
    def _on_iteration_end(self, stats: dict) -> None:
        cfg, it = self.cfg, self.iter
        if it % cfg.log_interval == 0 and stats:
            self._log_scalars(stats)
        last = it == self.spec.num_updates
        if it % cfg.eval_interval == 0 or last:
            self._evaluate_and_plot(vis=it % cfg.vis_interval == 0 or last)
        elif it % cfg.vis_interval == 0:
            self._visualise()
        if it % cfg.save_interval == 0:
            self.save()
        ret = self.last_eval.get("returns")
        info = "" if ret is None else "return/ep " + " ".join(f"{r:.2f}" for r in ret)
        self.progress.update(self.frames, info)

    def _log_scalars(self, stats: dict) -> None:
        log, it, s = self.logger, self.iter, self.storage
        for key, val in stats.get("policy", {}).items():
            log.add(f"policy_losses/{key}", val, it)
        for key, val in stats.get("vae", {}).items():
            log.add(f"vae_losses/{key}", val, it)
        for key, val in stats.get("exploration", {}).items():
            log.add(key if key.startswith("rnd/") else f"exploration/{key}", val, self.frames)
        log.add("environment/state_max", s.next_obs.max(), it)
        log.add("environment/state_min", s.next_obs.min(), it)
        log.add("environment/rew_max", s.rewards_raw.max(), it)
        log.add("environment/rew_min", s.rewards_raw.min(), it)
        log.add("policy/value", s.values.mean(), it)
        log.add("policy/action_logprob", s.log_probs.mean(), it)
        if not self.spec.discrete:
            log.add("policy/action_logstd", self.policy.logstd.detach().mean(), it)
        if "latent" in s.inputs:
            z = self.cfg.latent_dim
            log.add("encoder/latent_mean", s.inputs["latent"][..., :z].mean(), it)
            if not self.cfg.sample_embeddings:
                log.add("encoder/latent_logvar", s.inputs["latent"][..., z:].mean(), it)
        log.add("time/fps", self.progress.fps(self.frames), self.frames)

    def _evaluate_and_plot(self, vis: bool = True) -> None:
        res = evaluation.evaluate(self, seed=self.cfg.seed * 42 + self.iter)
        self.last_eval = res
        log, it, fr = self.logger, self.iter, self.frames
        for k, (m, sd) in enumerate(zip(res["returns"], res["returns_std"])):
            for axis, x in (("iter", it), ("frame", fr)):
                log.add(f"return_avg_per_{axis}/episode_{k + 1}", m, x)
                log.add(f"return_std_per_{axis}/episode_{k + 1}", sd, x)
            log.record(f"return_episode_{k + 1}", m)
        bonus_names = [k for k in res if k.startswith("return_bonus")]
        for name in ["success", "sparse_return", "dense_return"] + bonus_names:
            for k, m in enumerate(res.get(name, [])):
                for axis, x in (("iter", it), ("frame", fr)):
                    log.add(f"{name}_avg_per_{axis}/episode_{k + 1}", m, x)
                log.record(f"{name}_episode_{k + 1}", m)
        log.record("iteration", it)
        log.record("frames", fr)
        log.record("fps", self.progress.fps(fr))
        log.dump_row()
        plotting.plot_learning_curves(os.path.join(self.run_dir, "progress.csv"),
                                      os.path.join(self.run_dir, "plots", "returns.png"))
        if vis:
            self._visualise()

    def _visualise(self) -> None:
        rollout = evaluation.single_rollout(self, seed=self.cfg.seed * 42 + self.iter + 7)
        plotting.plot_behaviour(self, rollout, os.path.join(self.run_dir, "plots"), self.iter)

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {"iter": self.iter, "frames": self.frames, "vae_pretrained": self.vae_pretrained,
                "policy": self.policy.state_dict(), "updater": self.updater.state_dict(),
                "vae": self.vae.state_dict(self.cfg.checkpoint_vae_buffer) if self.vae else None,
                "bonus": self.bonus.state_dict() if self.bonus else None,
                "rew_norm": self.rew_norm.state_dict(), "env": self.env.state_dict(), "obs": self.obs.clone(),
                "rng": rng_state(), "config": self.cfg.to_dict()}

    def save(self) -> None:
        save_checkpoint(self.state_dict(), self.run_dir)

    def _load(self, state: dict) -> None:
        self.iter, self.frames = state["iter"], state["frames"]
        self.vae_pretrained = state["vae_pretrained"]
        self.policy.load_state_dict(state["policy"])
        self.updater.load_state_dict(state["updater"])
        if self.vae is not None:
            self.vae.load_state_dict(state["vae"])
        if self.bonus is not None:
            self.bonus.load_state_dict(state["bonus"])
        self.rew_norm.load_state_dict(state["rew_norm"])
        self.env.load_state_dict(state["env"])
        self.obs = state["obs"].to(self.device)
        set_rng_state(state["rng"])
