"""RL2 on sparse HalfCheetahDir."""
from config.methods import RL2

EXTENDS = "cds_varibad"
OVERRIDES = {**RL2, "lr_policy": 3e-4, "latent_dim": 128, "policy_latent_embedding_dim": None}
