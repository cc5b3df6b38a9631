"""RL2 on HalfCheetahVel."""
from config.methods import RL2

EXTENDS = "cheetah_vel_varibad"
OVERRIDES = {**RL2, "policy_num_steps": 800, "latent_dim": 128, "policy_latent_embedding_dim": None}
