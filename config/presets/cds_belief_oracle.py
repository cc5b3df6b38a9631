"""Belief oracle + hyper-state RND on sparse HalfCheetahDir (the belief reveals the direction
once |x| >= 5)."""
from config.methods import BELIEF_ORACLE

EXTENDS = "cds_hyperx"
OVERRIDES = {**BELIEF_ORACLE, "exp_label": "belief_oracle_hyperx", "exploration_bonus_vae_error": False,
             "weight_exploration_bonus_hyperstate": 5.0, "rnd_init_weight_scale": 5.0,
             "intrinsic_rew_clip_rewards": 10.0}
