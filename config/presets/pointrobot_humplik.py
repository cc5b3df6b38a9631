"""Humplik et al. task decoding on the sparse point robot (tanh on the Gaussian mean)."""
from config.methods import HUMPLIK

EXTENDS = "pointrobot_varibad"
OVERRIDES = {**HUMPLIK, "policy_num_steps": 600, "vae_subsample_elbos": 50,
             "vae_subsample_decodes": 50, "norm_actions_pre_sampling": True}
