"""MAML+expl on MIME's close-ring 2-D navigation (ring 5 < |g| < 5.5, H=300): VIME information-gain bonus with a
MAML-adapted Bayesian dynamics prior, fixed weight eta (sigmoid(eta) = 0.1)."""
EXTENDS = "nav_close_ring_maml"
OVERRIDES = {"use_vime": True, "exp_label": "maml_expl"}
