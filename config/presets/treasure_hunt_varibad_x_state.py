"""VariBAD + state-novelty RND on Mountain Treasure (HyperX's ablation)."""
from config.methods import VARIBAD_X_STATE

EXTENDS = "treasure_hunt_varibad"
OVERRIDES = {**VARIBAD_X_STATE, "weight_exploration_bonus_state": 1.0}
