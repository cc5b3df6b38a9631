"""VariBAD (no exploration bonus) on Mountain Treasure."""
from config.methods import VARIBAD

EXTENDS = "treasure_hunt_hyperx"
OVERRIDES = {**VARIBAD, "exploration_bonus_hyperstate": False, "exploration_bonus_vae_error": False}
