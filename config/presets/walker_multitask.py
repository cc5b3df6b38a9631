"""Multi-task oracle on Walker2DRandParams: the policy sees the physics parameters."""
from config.methods import MULTITASK

EXTENDS = "walker_varibad"
OVERRIDES = {**MULTITASK, "decode_state": False, "policy_task_embedding_dim": 64}
