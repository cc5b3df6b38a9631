"""MIME on MIME's close-ring 2-D navigation (ring 5 < |g| < 5.5, H=300): MAML+expl with the bonus weight eta
meta-learned (second-order adaptation)."""
EXTENDS = "nav_close_ring_maml_expl"
OVERRIDES = {"adapt_eta": True, "exp_label": "mime"}
