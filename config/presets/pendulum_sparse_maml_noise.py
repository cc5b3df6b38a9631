"""MAML+noise on MIME's meta-pendulum, sparse reward: reward_noise_std (0.1) x N(0, 1) added to the standardised
rewards (MIME's control for the exploration bonus)."""
EXTENDS = "pendulum_sparse_maml"
OVERRIDES = {"add_noise": True, "exp_label": "maml_noise"}
