"""MAML+noise on MIME's dog-feeding robot navigation (3 bowls, H=1000): reward_noise_std (0.1) x N(0, 1) added to
the standardised rewards (MIME's control for the exploration bonus)."""
EXTENDS = "dog_feeding_maml"
OVERRIDES = {"add_noise": True, "exp_label": "maml_noise"}
