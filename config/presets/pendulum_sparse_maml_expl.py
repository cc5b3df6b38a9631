"""MAML+expl on MIME's meta-pendulum, sparse reward: VIME information-gain bonus with a MAML-adapted Bayesian
dynamics prior, fixed weight eta (sigmoid(eta) = 0.1)."""
EXTENDS = "pendulum_sparse_maml"
OVERRIDES = {"use_vime": True, "exp_label": "maml_expl"}
