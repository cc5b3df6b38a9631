"""Features of the VariBAD loop that plug in through hooks (see ``components.base``):

    hyperx           HyperX exploration bonuses added to the rollout's rewards; RND training
    task_inference   task-inference supervision (TI/TI++/BI++HN) and the task-embedding warm-up
    encoder_rl       the RL loss through the encoder (RL2-style): latents recomputed with gradients

``build_components(cfg, ...)`` returns the ones a config switches on, in the order the loop
calls them.
"""
from __future__ import annotations

from components.base import Component
from components.encoder_rl import EncoderRL
from components.hyperx import HyperX
from components.task_inference import TaskInference


def build_components(cfg, spec, agent, device) -> list[Component]:
    candidates = (HyperX, TaskInference, EncoderRL)
    return [cls(cfg, spec, agent, device) for cls in candidates if cls.wanted(cfg)]
