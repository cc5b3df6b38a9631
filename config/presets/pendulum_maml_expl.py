"""MAML+expl on MIME's meta-pendulum, dense reward (6 train / 4 test (m, l) pairs, H=50): VIME information-gain
bonus with a MAML-adapted Bayesian dynamics prior, fixed weight eta (sigmoid(eta) = 0.1)."""
EXTENDS = "pendulum_maml"
OVERRIDES = {"use_vime": True, "exp_label": "maml_expl"}
