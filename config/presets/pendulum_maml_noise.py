"""MAML+noise on MIME's meta-pendulum, dense reward (6 train / 4 test (m, l) pairs, H=50): reward_noise_std (0.1)
x N(0, 1) added to the standardised rewards (MIME's control for the exploration bonus)."""
EXTENDS = "pendulum_maml"
OVERRIDES = {"add_noise": True, "exp_label": "maml_noise"}
