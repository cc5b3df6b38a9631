"""Features of the VariBAD loop that plug in through hooks (see ``components.base``):

    hyperx           HyperX exploration bonuses added to the rollout's rewards; RND training
    task_inference   task-inference supervision (TI/TI++/BI++HN) and the task-embedding warm-up
    encoder_rl       the RL loss through the encoder (RL2-style): latents recomputed with gradients
    dreams           ReId's dream environments: KDE/mixup latents rewarded by the VAE reward decoder
    pretrained       ReId's switches: modules loaded from other runs, a frozen VAE

``build_components(cfg, ...)`` returns the ones a config switches on, in the order the loop
calls them.
"""
from __future__ import annotations

from components.base import Component
from components.encoder_rl import EncoderRL
from components.hyperx import HyperX
from components.pretrained import FreezeVAE, LoadPretrained
from components.task_inference import TaskInference


def build_components(cfg, spec, agent, device, env) -> list[Component]:
    """``env``: the training BAMDP (a component may wrap its inner env, as the dream envs do)."""
    candidates = [LoadPretrained, HyperX, TaskInference, EncoderRL, FreezeVAE]
    if cfg.num_dream_envs:
        from components.dreams import DreamEnvs  # scipy: imported only where dreams are used

        candidates.append(DreamEnvs)
    return [cls(cfg, spec, agent, device, env) for cls in candidates if cls.wanted(cfg)]
