"""HyperX on the sparse 2-D point robot."""
from config.methods import HYPERX

EXTENDS = "pointrobot_varibad"
OVERRIDES = {
    **HYPERX,
    "num_frames": 20_000_000,
    "policy_num_steps": 600,
    "vae_batch_num_trajs": 10,
    "vae_subsample_elbos": 50,
    "vae_subsample_decodes": 50,
    "norm_actions_pre_sampling": True,
    "norm_rew_clip_param": 1e5,
    "weight_exploration_bonus_hyperstate": 0.01,
    "weight_exploration_bonus_vae_error": 0.1,
}
