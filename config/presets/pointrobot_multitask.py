"""Multi-task oracle on the sparse point robot: the policy sees the goal."""
from config.methods import MULTITASK

EXTENDS = "pointrobot_varibad"
OVERRIDES = {**MULTITASK, "policy_num_steps": 400, "policy_latent_embedding_dim": None,
             "policy_task_embedding_dim": 64}
