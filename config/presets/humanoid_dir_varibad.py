"""VariBAD on HumanoidDir (direction angle U(0, 2pi)); tanh-squashed actions."""
EXTENDS = "_mujoco_varibad"
OVERRIDES = {"env_name": "HumanoidDir", "policy_num_steps": 800, "ppo_num_epochs": 4, "ppo_num_minibatch": 2,
             "latent_dim": 10, "policy_layers": [512, 256], "policy_entropy_coef": 1e-3, "policy_gamma": 0.99,
             "num_vae_updates": 10, "vae_subsample_elbos": 100, "vae_subsample_decodes": 100,
             "tbptt_stepsize": None, "norm_actions_post_sampling": True, "policy_anneal_lr": True}
