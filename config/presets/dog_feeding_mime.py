"""MIME on MIME's dog-feeding robot navigation (3 bowls, H=1000): MAML+expl with the bonus weight eta meta-
learned (second-order adaptation)."""
EXTENDS = "dog_feeding_maml_expl"
OVERRIDES = {"adapt_eta": True, "exp_label": "mime"}
