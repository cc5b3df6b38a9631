"""VariBAD on AntDir (forward/backward along x; env_kwargs {"angle_quirk": true} for the reference's +-1 rad)."""
EXTENDS = "_mujoco_varibad"
OVERRIDES = {"env_name": "AntDir", "policy_num_steps": 200, "ppo_num_epochs": 2, "ppo_num_minibatch": 1}
