"""MAML+noise on MIME's close-ring 2-D navigation (ring 5 < |g| < 5.5, H=300): reward_noise_std (0.1) x N(0, 1)
added to the standardised rewards (MIME's control for the exploration bonus)."""
EXTENDS = "nav_close_ring_maml"
OVERRIDES = {"add_noise": True, "exp_label": "maml_noise"}
