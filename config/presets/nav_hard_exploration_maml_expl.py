"""MAML+expl on MIME's hard-exploration 2-D navigation (ring 8 < |g| < 9): VIME information-gain bonus with a
MAML-adapted Bayesian dynamics prior, fixed weight eta (sigmoid(eta) = 0.1)."""
EXTENDS = "nav_hard_exploration_maml"
OVERRIDES = {"use_vime": True, "exp_label": "maml_expl"}
