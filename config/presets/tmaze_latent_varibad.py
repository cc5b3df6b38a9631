"""T-Maze "latent": no indicator; the checks are up with p=0.7 (task up) or 0.5 (task down)."""
EXTENDS = "tmaze_ln_varibad"
OVERRIDES = {"env_name": "TMaze-Latent"}
