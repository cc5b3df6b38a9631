"""MAML+expl on MIME's dog-feeding robot navigation (3 bowls, H=1000): VIME information-gain bonus with a MAML-
adapted Bayesian dynamics prior, fixed weight eta (sigmoid(eta) = 0.1)."""
EXTENDS = "dog_feeding_maml"
OVERRIDES = {"use_vime": True, "exp_label": "maml_expl"}
