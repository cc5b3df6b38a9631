"""RL2 on GridNavi: the GRU is trained by PPO through the encoder, no decoder."""
from config.methods import RL2

EXTENDS = "gridworld_varibad"
OVERRIDES = {**RL2, "latent_dim": 32, "lr_vae": 7e-4, "policy_latent_embedding_dim": None}
