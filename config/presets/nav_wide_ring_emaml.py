"""E-MAML on MIME's sparse wide-ring 2-D navigation (goals 5 < |g| < 9, 16 fixed test goals): the pre-update
sampling term in the outer objective (each pre-update trajectory weighted by its task's post-update return)."""
EXTENDS = "nav_wide_ring_maml"
OVERRIDES = {"e_maml": True, "exp_label": "emaml"}
