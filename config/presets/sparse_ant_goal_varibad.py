"""VariBAD (no bonus) on sparse AntGoal."""
from config.methods import VARIBAD

EXTENDS = "sparse_ant_goal_hyperx"
OVERRIDES = {**VARIBAD, "exploration_bonus_hyperstate": False, "exploration_bonus_vae_error": False}
