"""Multi-task oracle on HalfCheetahVel: the policy sees the target velocity."""
from config.methods import MULTITASK

EXTENDS = "cheetah_vel_varibad"
OVERRIDES = {**MULTITASK, "policy_task_embedding_dim": 64}
