"""The acting side of a VariBAD-family policy: policy + the encoder it acts with, and how
their inputs are put together. Training rollouts, evaluation, plots and analysis tools all
act through an ``Agent``; none of them needs a trainer.

    agent = Agent.build(cfg, spec, device)            # fresh (the trainer does this)
    agent = load_run(run_dir).agent                   # from a run's last checkpoint

    belief, encode = agent.initial_belief(n), agent.belief_updater(n)   # prior per copy
    inputs = agent.inputs(env, obs, agent.latent(belief))
    act = agent.act(inputs)                           # raw action + env action
    obs2, reward, done, info = env.step(act.env_action)
    belief, posterior = encode(belief, agent.encoder_action(act.action), info["next_obs"], reward, obs, done)

The belief updater encodes one transition and resets copies whose BAMDP ended to the prior
(their next observation already belongs to a new task); ``posterior`` is b_{t+1} before that
reset, which the HyperX bonuses pair with s_{t+1} (as ``torch.cat([mean, logvar], -1)``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from models import members
from models.encoder import Posterior
from models.hypernet import HyperActorCritic
from models.policy import ActResult, Policy
from utils.spec import RunSpec
from vae import VAE

PARTS = ("state", "latent", "belief", "task")


def latent_size(cfg) -> int:
    """Size of the latent the policy sees: a sample, or (mean, logvar)."""
    return cfg.latent_dim if cfg.sample_embeddings else 2 * cfg.latent_dim


def policy_task_dim(cfg, spec: RunSpec) -> int:
    if not cfg.pass_task_as_onehot_id:
        return spec.task_dim
    if not spec.num_tasks:
        raise ValueError(f"--pass_task_as_onehot_id: env {cfg.env_name} has no finite set of tasks")
    return spec.num_tasks


def policy_input_dims(cfg, spec: RunSpec) -> dict[str, int]:
    """Size of every input part the policy is built for (0: not given to the policy)."""
    if cfg.pass_belief_to_policy and not spec.belief_dim:
        raise ValueError(f"--pass_belief_to_policy: env {cfg.env_name} has no exact belief")
    return {"state": spec.obs_dim * cfg.pass_state_to_policy,
            "latent": latent_size(cfg) * (cfg.pass_latent_to_policy and not cfg.disable_metalearner),
            "belief": spec.belief_dim * cfg.pass_belief_to_policy,
            "task": policy_task_dim(cfg, spec) * cfg.pass_task_to_policy}


def build_policy(cfg, spec: RunSpec, device) -> Policy:
    body_fn = cond_part = None
    if cfg.use_hypernet:
        cond_part = cfg.hypernet_input
        generated = None if cfg.policy_layers_hyper is None else [bool(x) for x in cfg.policy_layers_hyper]
        if generated is not None and len(generated) != len(cfg.policy_layers) + 1:
            raise ValueError(f"--policy_layers_hyper needs {len(cfg.policy_layers) + 1} entries (hidden layers + head)")
        body_fn = lambda base_dim, cond_dim: HyperActorCritic(  # noqa: E731
            base_dim, cond_dim, cfg.policy_layers, spec.num_actions,
            activation=cfg.policy_activation_function.replace("-", "_"), hypernet_layers=cfg.hypernet_layers,
            generated_layers=generated, head_bias=cfg.hypernet_head_bias, init=cfg.hypernet_init, film=cfg.use_film,
            actor_head_gain=0.01 if spec.discrete else 1.0)
    return Policy(policy_input_dims(cfg, spec), spec.num_actions, spec.discrete, cfg.policy_layers,
                  cfg.policy_activation_function, cfg.policy_initialisation,
                  embed_dims={p: getattr(cfg, f"policy_{p}_embedding_dim") for p in PARTS},
                  normalise={p: getattr(cfg, f"norm_{p}_for_policy") for p in PARTS},
                  init_std=cfg.policy_init_std, tanh_mean=cfg.norm_actions_pre_sampling,
                  tanh_squash=cfg.norm_actions_post_sampling, body_fn=body_fn, cond_part=cond_part,
                  task_substitutes_latent=bool(cfg.task_num_warmup or cfg.ti_coeff is not None)).to(device)


def build_vae(cfg, spec: RunSpec, env, device, task_target_dim: int | None = None) -> VAE | None:
    """The belief model (None without a meta-learner). ``task_target_dim``: the task decoder
    regresses a learned target of that size (task-inference supervision) instead of the task."""
    if cfg.disable_metalearner:
        return None
    inner = env.env
    vae_cfg = cfg.section("vae", "encoder", "decoder")
    if task_target_dim is not None:
        vae_cfg.decode_task, vae_cfg.task_pred_type, vae_cfg.task_loss_coeff = True, "task_description", cfg.ti_coeff
    task_id = inner.task_to_id if getattr(type(inner), "task_to_id", None) is not _base_task_to_id() else None
    return VAE(spec, vae_cfg, cfg.num_processes, device, state_to_id=getattr(inner, "cell_id", None), task_to_id=task_id,
               seed=cfg.seed, task_target_dim=task_target_dim)


def _base_task_to_id():
    from environments.base import MetaEnv

    return MetaEnv.task_to_id


class Agent:
    """Policy + encoder + input assembly of one VariBAD-family agent."""

    def __init__(self, cfg, spec: RunSpec, policy: Policy, vae: VAE | None, device="cpu", task_to_id=None):
        """task_to_id: the env's map from tasks to ids (needed for one-hot task inputs)."""
        self.cfg, self.spec, self.policy, self.vae = cfg, spec, policy, vae
        self.device, self.task_to_id = torch.device(device), task_to_id

    @property
    def encoder(self):
        """The encoder the policy acts with (with overlapped VAE updates: a lagging copy)."""
        return self.vae.acting_encoder if self.vae is not None else None

    # ---- inputs ---------------------------------------------------------------------------
    def latent_input(self, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """What the policy sees of a posterior: a sample or (mean, logvar), optionally ReLU'd."""
        if self.cfg.sample_embeddings:
            lat = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        else:
            lat = torch.cat([mean, logvar], -1)
        return torch.relu(lat) if self.cfg.add_nonlinearity_to_latent else lat

    def latent(self, belief: Posterior | None) -> torch.Tensor | None:
        return None if belief is None else self.latent_input(belief.mean, belief.logvar)

    def latent_flat(self, flat: torch.Tensor) -> torch.Tensor:
        """``latent`` of a belief given as ``cat([mean, logvar], -1)`` (no re-concatenation)."""
        if self.cfg.sample_embeddings:
            z = flat.shape[-1] // 2
            return self.latent_input(flat[..., :z], flat[..., z:])
        return torch.relu(flat) if self.cfg.add_nonlinearity_to_latent else flat

    def task_input(self, task: torch.Tensor) -> torch.Tensor:
        """The task as the policy sees it: its description or a one-hot task id."""
        if not self.cfg.pass_task_as_onehot_id:
            return task
        return torch.nn.functional.one_hot(self.task_to_id(task), self.spec.num_tasks).to(task.dtype)

    def inputs(self, env, obs: torch.Tensor, latent: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Everything the policy may look at; it picks the parts it was built for."""
        inputs = {"state": obs}
        if latent is not None:
            inputs["latent"] = latent
        if self.cfg.pass_belief_to_policy:
            inputs["belief"] = env.get_belief()
        if self.cfg.pass_task_to_policy:
            inputs["task"] = self.task_input(env.get_task())
        return inputs

    def encoder_action(self, action: torch.Tensor) -> torch.Tensor:
        """What the encoder/VAE see of an action: the env action, as float [N, da]."""
        if self.spec.discrete:
            return action.float().reshape(-1, 1)
        return torch.tanh(action) if self.cfg.norm_actions_post_sampling else action

    # ---- acting and belief updates --------------------------------------------------------
    def act(self, inputs: dict[str, torch.Tensor], deterministic: bool = False) -> ActResult:
        return self.policy.act(inputs, deterministic=deterministic)

    def acting(self):
        """``act`` as one function for the steps of one rollout (``Policy.acting``: bit for bit
        equal, parameters read once); take a new one after the policy or its normalisers change."""
        return self.policy.acting()

    def initial_belief(self, num_envs: int) -> Posterior | None:
        return None if self.vae is None else self.encoder.prior(num_envs)

    def belief_updater(self, num_envs: int) -> "BeliefUpdater":
        """Encodes transitions with the acting encoder as it is now (take one per rollout)."""
        return BeliefUpdater(self.encoder, num_envs, self.device)

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def build(cls, cfg, spec: RunSpec, env, device, task_target_dim: int | None = None) -> "Agent":
        vae = build_vae(cfg, spec, env, device, task_target_dim)
        return cls(cfg, spec, build_policy(cfg, spec, device), vae, device,
                   task_to_id=env.task_to_id if cfg.pass_task_as_onehot_id else None)

    def new_policy(self) -> Policy:
        """A freshly initialised policy of this agent's architecture (draws from the global RNG)."""
        return build_policy(self.cfg, self.spec, self.device)

    def state_dict(self, with_vae_buffer: bool = False) -> dict:
        return {"policy": self.policy.state_dict(),
                "vae": self.vae.state_dict(with_vae_buffer) if self.vae is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        if self.vae is not None:
            self.vae.load_state_dict(state["vae"])


class BeliefUpdater:
    """One encoder step for a batch of copies, with the reset to the prior at task ends."""

    def __init__(self, encoder, num_envs: int, device):
        self.encoder = encoder
        self.prior = encoder.prior(1)
        self.h0 = encoder.initial_hidden(num_envs, device)
        self.fused = _FusedGRUStep.of(encoder)
        # (mean, logvar) of the prior as one row: the heads' output itself, bit for bit
        self.prior_flat = torch.cat([self.prior.mean, self.prior.logvar], -1)

    @classmethod
    def of_members(cls, encoders: list, num_envs: int, device) -> "BeliefUpdater":
        """The step of the S member encoders of a ``--num_seeds`` run as one computation:
        ``step_flat`` on beliefs [S, N, .], each member bit for bit its own updater's step.
        Only for the GRU encoder's fused step."""
        fused = _FusedGRUStep.of(*encoders)
        if fused is None:
            raise ValueError("--num_seeds > 1 needs the GRU belief encoder without layers before/after the GRU")
        self = cls.__new__(cls)
        self.encoder, self.prior, self.fused = None, None, fused
        self.h0 = torch.zeros(len(encoders), num_envs, encoders[0].hidden_size, device=device)
        self.prior_flat = members.stack([torch.cat([p.mean, p.logvar], -1) for p in (e.prior(1) for e in encoders)])
        return self

    def __call__(self, belief: Posterior, enc_action, next_obs, reward, prev_obs, done) -> tuple[Posterior, Posterior]:
        """Encode transition (prev_obs, enc_action, reward, next_obs) of every copy; copies
        whose BAMDP ended (``done``) restart from the prior: their next observation belongs to
        a new task. Returns (belief for the next step, posterior b_{t+1} before the reset)."""
        if self.fused is not None:
            flat, hidden, out, h = self.step_flat(belief.hidden, enc_action, next_obs, reward, prev_obs, done)
            z = self.fused.latent_dim
            return Posterior(flat[:, :z], flat[:, z:], hidden), Posterior(out[:, :z], out[:, z:], h)
        post = self.encoder.step(enc_action, next_obs, reward[:, None], belief.hidden, prev_state=prev_obs)
        new_task, prior = done[:, None], self.prior
        return Posterior(torch.where(new_task, prior.mean, post.mean), torch.where(new_task, prior.logvar, post.logvar),
                         torch.where(new_task, self.h0, post.hidden)), post

    def step_flat(self, hidden, enc_action, next_obs, reward, prev_obs, done, any_done: bool | None = None):
        """The same step on flat beliefs: returns (belief for the next step as
        ``cat([mean, logvar], -1)``, its hidden state, posterior b_{t+1} before the reset as
        ``cat([mean, logvar], -1)``, its hidden state). The GRU encoder's step is run as its
        plain ops (no module calls, one ``where`` for mean and logvar); other encoders go
        through ``__call__``. Bit-identical to ``__call__``. ``any_done``: ``bool(done.any())`` if
        the caller knows it; False skips the resets (``where`` with no True selects ``out``, ``h``
        themselves, so these are returned as they are)."""
        if self.fused is None:
            belief, post = self(Posterior(None, None, hidden), enc_action, next_obs, reward, prev_obs, done)
            return (torch.cat([belief.mean, belief.logvar], -1), belief.hidden,
                    torch.cat([post.mean, post.logvar], -1), post.hidden)
        out, h = self.fused(enc_action, next_obs, reward, hidden)
        if any_done is False:
            return out, h, out, h
        new_task = done[..., None]
        return torch.where(new_task, self.prior_flat, out), torch.where(new_task, self.h0, h), out, h


class _FusedGRUStep:
    """``RNNEncoder.step`` (embeddings -> GRU cell -> (mean, logvar) head) as its plain
    functional ops, for the per-env-step path; of one encoder, or of the S member encoders of a
    ``--num_seeds`` run at once (parameters stacked: inputs [S, N, .], each member bit for bit
    its own step). Only for the encoder layout it mirrors (no layers before/after the GRU);
    ``of`` returns None otherwise."""

    def __init__(self, encoders: list):
        first, ops = encoders[0], members.ops_for(len(encoders))
        self.latent_dim = first.latent_dim
        parts = lambda e: (e.action_encoder, e.state_encoder, e.reward_encoder)  # noqa: E731
        # the parameter tensors, read once (an updater lives for one rollout; optimiser steps and
        # load_state_dict change them in place, so with one encoder these references always see
        # current values; stacked members are copies, taken afresh per rollout)
        self._embeds = [(i, ops.pick([parts(e)[i].fc.weight for e in encoders]),
                         ops.pick([parts(e)[i].fc.bias for e in encoders]), enc.act)
                        for i, enc in enumerate(parts(first)) if enc.out_dim > 0]
        self._gru = tuple(ops.pick([getattr(e.gru, name) for e in encoders])
                          for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"))
        self._head = (ops.pick([e.fc_out.weight for e in encoders]), ops.pick([e.fc_out.bias for e in encoders]))
        self._linear, self._cell = ops.linear, ops.gru_cell

    @classmethod
    def of(cls, *encoders) -> "_FusedGRUStep | None":
        from models.encoder import RNNEncoder

        if any(type(e) is not RNNEncoder or len(e.before) or len(e.after) for e in encoders):
            return None
        return cls(list(encoders))

    def __call__(self, action, state, reward, hidden):
        linear = self._linear
        xs = (action, state, reward[..., None])
        x = torch.cat([act(linear(xs[i], w, b)) for i, w, b, act in self._embeds], -1)
        h = self._cell(x, hidden, *self._gru)
        return linear(h, *self._head), h


@dataclass
class LoadedRun:
    """A run's config and its last checkpoint, loaded for evaluation or analysis."""
    cfg: Any
    spec: RunSpec
    agent: Agent
    state: dict

    def bonus(self):
        """The run's HyperX bonus with its trained RND nets and statistics (None if it had none)."""
        from components.hyperx import build_bonus

        bonus = build_bonus(self.cfg, self.spec, self.agent.device)
        if bonus is not None and self.state.get("bonus") is not None:
            bonus.load_state_dict(self.state["bonus"])
        return bonus


def load_run(run_dir: str, device="cpu") -> LoadedRun:
    """Config + agent of ``run_dir`` at its last checkpoint. The run dir is only read; no
    trainer, no new run dir."""
    from environments.bamdp import build_env
    from utils.checkpoint import load_checkpoint
    from config.run_dir import load_run_config

    cfg = load_run_config(run_dir, {"progress_bar": ["false"]})
    state = load_checkpoint(run_dir)
    env = build_env(cfg, 1, cfg.seed, device)
    spec = RunSpec.from_env(env, cfg)
    agent = Agent.build(cfg, spec, env, device, task_target_dim=_saved_task_target_dim(state))
    agent.load_state_dict(state)
    return LoadedRun(cfg, spec, agent, state)


def _saved_task_target_dim(state: dict) -> int | None:
    """Task-inference runs' task decoders regress a learned target: read its size off the weights."""
    cfg = state["config"]
    if cfg.get("ti_coeff") is None or cfg.get("rlloss_through_encoder") or state.get("vae") is None:
        return None
    weight = [v for k, v in state["vae"]["modules"]["task_decoder"].items() if k.endswith("weight")][-1]
    return int(weight.shape[0])
