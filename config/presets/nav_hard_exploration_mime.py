"""MIME on MIME's hard-exploration 2-D navigation (ring 8 < |g| < 9): MAML+expl with the bonus weight eta meta-
learned (second-order adaptation)."""
EXTENDS = "nav_hard_exploration_maml_expl"
OVERRIDES = {"adapt_eta": True, "exp_label": "mime"}
