"""Task-inference supervision (Beck et al. 2023) as a component.

- warm-up (``task_num_warmup``): for the first updates the policy conditions on its own task
  embedding instead of the latent; with ``ti_hard_reset`` every policy parameter but the task
  embedding is re-initialised when the warm-up ends (fresh optimiser too);
- TI/TI++ (VariBAD-based): the VAE task decoder regresses the stop-gradient target
  (``vae_target_dim`` sizes it; the target function is installed on the VAE here);
- TI for RNN-based models (``rlloss_through_encoder``): the embedded latent, recomputed with
  gradients in every PPO minibatch, regresses the target (``minibatch_loss``);
- BI++HN (``ti_target base_net``): the target is every base-net parameter the hypernetwork
  generates from the task embedding, not the embedding itself.
"""
from __future__ import annotations

import torch

from components.base import Component


def vae_supervised(cfg) -> bool:
    """TI on a VariBAD-based model: the VAE's task decoder carries the supervision."""
    return cfg.ti_coeff is not None and not cfg.rlloss_through_encoder


def vae_target_dim(cfg, spec, build_policy) -> int | None:
    """Size of the VAE task decoder's target (None: no TI on the VAE): the task embedding, or
    (BI++HN) all generated base-net parameters, counted on a probe policy (``build_policy(cfg,
    spec, device)``) built without touching the global RNG."""
    if not vae_supervised(cfg):
        return None
    if cfg.ti_target == "task":
        return cfg.policy_task_embedding_dim
    with torch.random.fork_rng(devices=[]):
        probe = build_policy(cfg, spec, "cpu")
    return probe.body.generated_params(None, torch.zeros(1, probe.body.cond_dim)).shape[-1]


class TaskInference(Component):
    @staticmethod
    def wanted(cfg) -> bool:
        return bool(cfg.task_num_warmup) or cfg.ti_coeff is not None

    def __init__(self, cfg, spec, agent, device, env=None):
        self.cfg, self.agent = cfg, agent
        if vae_supervised(cfg):  # computed without gradients: a stop-gradient target
            agent.vae.task_target_fn = lambda tasks: self.target(agent.task_input(tasks))

    def target(self, tasks: torch.Tensor) -> torch.Tensor:
        """Task-inference target for tasks as the policy sees them: the policy's task embedding,
        or (BI++HN) the base-net parameters the hypernetwork generates from it."""
        policy = self.agent.policy
        emb = policy.embed("task", tasks)
        return emb if self.cfg.ti_target == "task" else policy.body.generated_params(None, emb)

    def policy_loss(self, mb: dict[str, torch.Tensor]) -> torch.Tensor:
        """TI for RNN-based models: the embedded latent of a minibatch (with gradients into the
        encoder) regresses the stop-gradient target; BI++HN compares generated parameters."""
        policy = self.agent.policy
        pred = policy.embed("latent", mb["latent"])
        if self.cfg.ti_target == "base_net":
            pred = policy.body.generated_params(None, pred)
        with torch.no_grad():
            target = self.target(mb["task"])
        return self.cfg.ti_coeff * (pred - target).pow(2).mean()

    def before_iteration(self, trainer) -> None:
        warmup, policy = self.cfg.task_num_warmup, self.agent.policy
        if warmup and trainer.iter == warmup and policy.use_task:
            self.end_warmup(trainer)
        policy.use_task = trainer.iter < warmup

    def end_warmup(self, trainer) -> None:
        """With a hard reset every policy parameter except the task embedding is re-initialised."""
        if not self.cfg.ti_hard_reset:
            return
        policy = self.agent.policy
        fresh = self.agent.new_policy().state_dict()
        fresh.update({k: v for k, v in policy.state_dict().items() if k.startswith(("embedders.task", "normalisers.task"))})
        policy.load_state_dict(fresh)
        trainer.updater = trainer.make_updater()

    def update_kwargs(self, trainer) -> dict:
        if self.cfg.ti_coeff is not None and self.cfg.rlloss_through_encoder:
            return {"minibatch_loss": self.policy_loss}
        return {}
