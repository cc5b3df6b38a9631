"""RL2 on HalfCheetahDir."""
from config.methods import RL2

EXTENDS = "cheetah_dir_varibad"
OVERRIDES = {**RL2, "policy_num_steps": 200, "ppo_num_epochs": 2, "ppo_num_minibatch": 4, "latent_dim": 128,
             "policy_layers": [128], "policy_latent_embedding_dim": None}
