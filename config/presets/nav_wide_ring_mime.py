"""MIME on MIME's sparse wide-ring 2-D navigation (goals 5 < |g| < 9, 16 fixed test goals): MAML+expl with the
bonus weight eta meta-learned (second-order adaptation)."""
EXTENDS = "nav_wide_ring_maml_expl"
OVERRIDES = {"adapt_eta": True, "exp_label": "mime"}
