"""RL2 on Mountain Treasure."""
from config.methods import RL2

EXTENDS = "treasure_hunt_varibad"
OVERRIDES = {**RL2, "latent_dim": 64, "decode_state": False}
