"""T-Maze "agree": go up iff the indicators at cells 1 and 50 agree."""
EXTENDS = "tmaze_ln_varibad"
OVERRIDES = {"env_name": "TMaze-Agree"}
