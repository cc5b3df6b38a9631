"""VariBAD on the sparse point robot, HyperX's settings without bonuses."""
from config.methods import VARIBAD

EXTENDS = "pointrobot_sparse_hyperx"
OVERRIDES = {**VARIBAD, "exploration_bonus_hyperstate": False, "exploration_bonus_vae_error": False,
             "tbptt_stepsize": 50}
