"""MAML-TRPO on MIME's sparse wide-ring 2-D navigation (goals 5 < |g| < 9, 16 fixed test goals): MIME's settings
(configs/msc_project), 100 + 3 (pre-epochs) meta-iterations of 10 tasks x 20 trajectories; rewards
standardised per task batch as MIME does for every variant."""
OVERRIDES = {
    "trainer": "maml", "env_name": "Nav2DWideRing", "env_kwargs": {}, "exp_label": "maml",
    "num_frames": 4120000, "maml_meta_batch": 10, "maml_fast_batch": 20, "maml_fast_lr": 0.05,
    "maml_num_inner_steps": 1, "maml_normalize_rewards": True, "policy_gamma": 1.0,
    "policy_layers": [64, 64], "policy_activation_function": "tanh", "policy_init_std": 1.0, "policy_tau": 1.0,
    "dyn_hidden": [32], "dyn_lr": 0.0001, "dyn_meta_lr": 1e-4, "dyn_prior_sd": 0.01, "eta_init": 0.1,
    "eta_lr": 1000.0, "pre_epochs": 3,
    "log_interval": 1, "eval_interval": 10, "vis_interval": 25, "save_interval": 5,
}
