"""T-Maze with intermediate checks (T-LS): indicator at cell 1, 0.1 per correct check."""
EXTENDS = "tmaze_ln_varibad"
OVERRIDES = {"env_name": "TMaze-LS"}
