"""Multi-task oracle on HopperRandParams."""
from config.methods import MULTITASK

EXTENDS = "hopper_varibad"
OVERRIDES = {**MULTITASK, "decode_state": False, "policy_task_embedding_dim": 64}
