"""RL2 on the sparse point robot."""
from config.methods import RL2

EXTENDS = "pointrobot_varibad"
OVERRIDES = {**RL2, "policy_num_steps": 600, "latent_dim": 128, "policy_latent_embedding_dim": None}
