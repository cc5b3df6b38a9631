"""E-MAML on MIME's dog-feeding robot navigation (3 bowls, H=1000): the pre-update sampling term in the outer
objective (each pre-update trajectory weighted by its task's post-update return)."""
EXTENDS = "dog_feeding_maml"
OVERRIDES = {"e_maml": True, "exp_label": "emaml"}
