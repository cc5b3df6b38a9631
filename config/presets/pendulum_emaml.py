"""E-MAML on MIME's meta-pendulum, dense reward (6 train / 4 test (m, l) pairs, H=50): the pre-update sampling
term in the outer objective (each pre-update trajectory weighted by its task's post-update return)."""
EXTENDS = "pendulum_maml"
OVERRIDES = {"e_maml": True, "exp_label": "emaml"}
