"""VariBAD on HalfCheetahDir (run forward or backward), 2 episodes per task."""
EXTENDS = "_mujoco_varibad"
OVERRIDES = {"env_name": "HalfCheetahDir", "policy_num_steps": 800, "ppo_num_epochs": 16, "ppo_num_minibatch": 4,
             "norm_actions_pre_sampling": True, "encoder_max_grad_norm": 1.0, "decoder_max_grad_norm": 1.0}
