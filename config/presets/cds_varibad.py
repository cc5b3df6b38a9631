"""VariBAD (no bonus) on sparse HalfCheetahDir."""
from config.methods import VARIBAD

EXTENDS = "cds_hyperx"
OVERRIDES = {**VARIBAD, "exploration_bonus_hyperstate": False, "exploration_bonus_vae_error": False}
