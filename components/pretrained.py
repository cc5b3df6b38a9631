"""ReId's switches on the VAE and the policy, as components:

- ``LoadPretrained``: ``saved_policy`` / ``saved_encoder`` / ``saved_reward_decoder`` /
  ``saved_state_decoder`` / ``saved_task_decoder`` name run dirs whose latest checkpoint the
  module is loaded from before training (architectures must match; the error says which).
- ``FreezeVAE``: ``freeze_vae`` (from the start) or ``delayed_freeze`` (from that update on):
  the VAE loss is still computed and logged but the VAE is never stepped.
"""
from __future__ import annotations

from components.base import Component

PARTS = ("policy", "encoder", "reward_decoder", "state_decoder", "task_decoder")


class LoadPretrained(Component):
    @staticmethod
    def wanted(cfg) -> bool:
        return any(getattr(cfg, f"saved_{p}", None) for p in PARTS)

    def __init__(self, cfg, spec, agent, device, env):
        from utils.checkpoint import load_checkpoint

        for part in PARTS:
            run_dir = getattr(cfg, f"saved_{part}")
            if not run_dir:
                continue
            state = load_checkpoint(run_dir)
            if part == "policy":
                module, saved = agent.policy, state["policy"]
            else:
                module = getattr(agent.vae, part, None) if agent.vae is not None else None
                saved = (state.get("vae") or {}).get("modules", {}).get(part)
                if module is None or saved is None:
                    raise ValueError(f"--saved_{part} {run_dir}: the {'run' if module is not None else 'model'} has no "
                                     f"{part.replace('_', ' ')}")
            try:
                module.load_state_dict(saved)
            except RuntimeError as err:
                raise ValueError(f"--saved_{part} {run_dir}: the saved {part.replace('_', ' ')} does not fit this "
                                 f"model ({str(err).splitlines()[0]})") from None
            if part == "encoder" and agent.vae.acting_encoder is not agent.vae.encoder:
                agent.vae.acting_encoder.load_state_dict(saved)


class FreezeVAE(Component):
    @staticmethod
    def wanted(cfg) -> bool:
        return bool(getattr(cfg, "freeze_vae", False) or getattr(cfg, "delayed_freeze", None))

    def __init__(self, cfg, spec, agent, device, env):
        if agent.vae is None:
            raise ValueError("--freeze_vae / --delayed_freeze: this model has no VAE")
        self.cfg, self.vae = cfg, agent.vae

    def before_iteration(self, trainer) -> None:
        delayed = self.cfg.delayed_freeze
        self.vae.frozen = bool(self.cfg.freeze_vae) or (delayed is not None and trainer.iter >= delayed)
