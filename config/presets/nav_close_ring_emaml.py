"""E-MAML on MIME's close-ring 2-D navigation (ring 5 < |g| < 5.5, H=300): the pre-update sampling term in the
outer objective (each pre-update trajectory weighted by its task's post-update return)."""
EXTENDS = "nav_close_ring_maml"
OVERRIDES = {"e_maml": True, "exp_label": "emaml"}
