"""RL2 on sparse AntGoal (the reference config crashed on a duplicated option)."""
from config.methods import RL2

EXTENDS = "sparse_ant_goal_varibad"
OVERRIDES = {**RL2, "latent_dim": 128, "policy_latent_embedding_dim": None}
