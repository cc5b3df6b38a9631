"""Multi-task oracle on HalfCheetahDir: the policy sees the direction."""
from config.methods import MULTITASK

EXTENDS = "cheetah_dir_varibad"
OVERRIDES = {**MULTITASK, "policy_task_embedding_dim": 64}
