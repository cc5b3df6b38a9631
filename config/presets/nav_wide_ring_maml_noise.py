"""MAML+noise on MIME's sparse wide-ring 2-D navigation (goals 5 < |g| < 9, 16 fixed test goals):
reward_noise_std (0.1) x N(0, 1) added to the standardised rewards (MIME's control for the exploration bonus)."""
EXTENDS = "nav_wide_ring_maml"
OVERRIDES = {"add_noise": True, "exp_label": "maml_noise"}
