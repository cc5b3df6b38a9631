"""The hooks through which a feature plugs into the VariBAD loop (``metalearner.py``).

Every hook is optional. Per iteration the loop calls, in this order:

    before_iteration(trainer)         e.g. switch the policy's input after a warm-up
    ... the rollout: per-step quantities named in ``storage_dims`` are stored ...
    after_rollout(trainer) -> stats   e.g. add exploration bonuses to the rewards (before GAE)
    update_kwargs(trainer) -> dict    keyword arguments for ``PolicyUpdater.update``
                                      (recompute_latent, extra_loss, minibatch_loss, ...)
and, with the behaviour plots, ``visualise(trainer, folder, iteration)``.

``storage_dims()`` names per-step tensors [T, N, d] the rollout must keep for the component;
the rollout knows how to fill these names:

    posterior     b_{t+1} = (mean, logvar) after encoding transition t, before a task reset
    next_belief   the env's exact belief after step t (oracles)
    task          the task of transition t

``state_key`` is the component's entry in checkpoints (None: it has no state of its own).
"""
from __future__ import annotations


class Component:
    state_key: str | None = None

    @staticmethod
    def wanted(cfg) -> bool:
        """Whether a config switches this component on."""
        raise NotImplementedError

    def storage_dims(self) -> dict[str, int]:
        return {}

    def before_iteration(self, trainer) -> None:
        pass

    def after_rollout(self, trainer) -> dict:
        return {}

    def update_kwargs(self, trainer) -> dict:
        return {}

    def visualise(self, trainer, folder: str, iteration: int) -> None:
        """Extra plots into the run's plots folder (every ``vis_interval`` updates)."""

    def state_dict(self) -> dict | None:
        return None

    def load_state_dict(self, state: dict) -> None:
        pass
