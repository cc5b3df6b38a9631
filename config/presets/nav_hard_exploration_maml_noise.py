"""MAML+noise on MIME's hard-exploration 2-D navigation (ring 8 < |g| < 9): reward_noise_std (0.1) x N(0, 1)
added to the standardised rewards (MIME's control for the exploration bonus)."""
EXTENDS = "nav_hard_exploration_maml"
OVERRIDES = {"add_noise": True, "exp_label": "maml_noise"}
