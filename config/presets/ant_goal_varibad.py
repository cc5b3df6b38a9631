"""VariBAD on AntGoal (goal in a disk of radius 3)."""
EXTENDS = "_mujoco_varibad"
OVERRIDES = {"env_name": "AntGoal", "policy_num_steps": 200, "ppo_num_epochs": 2, "ppo_num_minibatch": 1,
             "ppo_clip_param": 0.05, "lr_policy": 1e-3, "latent_dim": 10, "num_vae_updates": 5,
             "vae_subsample_elbos": None, "vae_subsample_decodes": None, "tbptt_stepsize": None,
             "policy_initialisation": "orthogonal", "policy_anneal_lr": True}
