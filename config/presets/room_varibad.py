"""VariBAD (no exploration bonus) on the multi-stage rooms gridworld."""
from config.methods import VARIBAD

EXTENDS = "room_hyperx"
OVERRIDES = {**VARIBAD, "exploration_bonus_hyperstate": False, "exploration_bonus_vae_error": False}
