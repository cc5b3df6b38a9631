"""Multi-task oracle on AntDir."""
from config.methods import MULTITASK

EXTENDS = "ant_dir_varibad"
OVERRIDES = {**MULTITASK, "policy_task_embedding_dim": 64}
