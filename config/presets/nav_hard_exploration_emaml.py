"""E-MAML on MIME's hard-exploration 2-D navigation (ring 8 < |g| < 9): the pre-update sampling term in the outer
objective (each pre-update trajectory weighted by its task's post-update return)."""
EXTENDS = "nav_hard_exploration_maml"
OVERRIDES = {"e_maml": True, "exp_label": "emaml"}
