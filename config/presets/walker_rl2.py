"""RL2 on Walker2DRandParams."""
from config.methods import RL2

EXTENDS = "walker_varibad"
OVERRIDES = {**RL2, "decode_state": False, "latent_dim": 128, "policy_latent_embedding_dim": None}
