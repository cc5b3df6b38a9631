"""VariBAD on HalfCheetahVel (target velocity U(0, 3), see environments/mujoco/cheetah.py)."""
EXTENDS = "_mujoco_varibad"
OVERRIDES = {"env_name": "HalfCheetahVel", "policy_num_steps": 400, "ppo_num_epochs": 2, "ppo_num_minibatch": 8}
