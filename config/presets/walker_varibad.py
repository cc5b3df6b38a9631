"""VariBAD on Walker2DRandParams (random body mass/inertia/damping/friction); a state decoder too."""
EXTENDS = "_mujoco_varibad"
OVERRIDES = {"env_name": "Walker2DRandParams", "policy_num_steps": 200, "ppo_num_epochs": 2, "ppo_num_minibatch": 2,
             "ppo_clip_param": 0.05, "latent_dim": 10, "kl_weight": 1.0, "decode_state": True,
             "state_decoder_layers": [256, 128]}
