"""VariBAD + state-novelty RND on the rooms gridworld."""
from config.methods import VARIBAD_X_STATE

EXTENDS = "room_varibad"
OVERRIDES = {**VARIBAD_X_STATE, "weight_exploration_bonus_state": 10.0}
