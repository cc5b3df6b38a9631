"""Multi-task oracle on HumanoidDir."""
from config.methods import MULTITASK

EXTENDS = "humanoid_dir_varibad"
OVERRIDES = {**MULTITASK, "policy_task_embedding_dim": 64}
