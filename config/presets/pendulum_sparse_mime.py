"""MIME on MIME's meta-pendulum, sparse reward: MAML+expl with the bonus weight eta meta-learned (second-order
adaptation)."""
EXTENDS = "pendulum_sparse_maml_expl"
OVERRIDES = {"adapt_eta": True, "exp_label": "mime"}
