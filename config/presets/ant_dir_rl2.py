"""RL2 on AntDir."""
from config.methods import RL2

EXTENDS = "ant_dir_varibad"
OVERRIDES = {**RL2, "latent_dim": 128, "policy_latent_embedding_dim": None}
