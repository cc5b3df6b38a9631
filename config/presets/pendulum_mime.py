"""MIME on MIME's meta-pendulum, dense reward (6 train / 4 test (m, l) pairs, H=50): MAML+expl with the bonus
weight eta meta-learned (second-order adaptation)."""
EXTENDS = "pendulum_maml_expl"
OVERRIDES = {"adapt_eta": True, "exp_label": "mime"}
