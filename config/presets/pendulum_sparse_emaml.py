"""E-MAML on MIME's meta-pendulum, sparse reward: the pre-update sampling term in the outer objective (each pre-
update trajectory weighted by its task's post-update return)."""
EXTENDS = "pendulum_sparse_maml"
OVERRIDES = {"e_maml": True, "exp_label": "emaml"}
