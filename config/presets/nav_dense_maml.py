"""MAML-TRPO on MAML's 2-D navigation (2DNavigation-v0: dense, goals U[-0.5, 0.5]^2): pytorch-maml-rl's yaml
settings (500 meta-iterations of 20 tasks x 20 trajectories, fast lr 0.1, max KL 1e-2, CG 10 / 1e-5, line
search 15 x 0.8, gamma 0.99, GAE lambda 1). MAML's NormalizedActionWrapper(scale 10) is not applied: the
policy acts in the env's own action range."""
OVERRIDES = {
    "trainer": "maml", "env_name": "Nav2DDense", "env_kwargs": {}, "exp_label": "maml",
    "num_frames": 40000000, "maml_meta_batch": 20, "maml_fast_batch": 20, "maml_fast_lr": 0.1,
    "maml_num_inner_steps": 1, "policy_gamma": 0.99,
    "policy_layers": [64, 64], "policy_activation_function": "tanh", "policy_init_std": 1.0, "policy_tau": 1.0,
    "log_interval": 1, "eval_interval": 10, "vis_interval": 50, "save_interval": 5,
}
