"""MAML+expl on MIME's sparse wide-ring 2-D navigation (goals 5 < |g| < 9, 16 fixed test goals): VIME
information-gain bonus with a MAML-adapted Bayesian dynamics prior, fixed weight eta (sigmoid(eta) = 0.1)."""
EXTENDS = "nav_wide_ring_maml"
OVERRIDES = {"use_vime": True, "exp_label": "maml_expl"}
