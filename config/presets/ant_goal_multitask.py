"""Multi-task oracle on AntGoal."""
from config.methods import MULTITASK

EXTENDS = "ant_goal_varibad"
OVERRIDES = {**MULTITASK, "policy_task_embedding_dim": 64}
