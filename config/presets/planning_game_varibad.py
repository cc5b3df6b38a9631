"""Memory & Planning Game 3x3 (Ritter et al. 2021): collect goals on a grid with hidden labels."""
EXTENDS = "_memory_varibad"
OVERRIDES = {"env_name": "PlanningGame", "max_rollouts_per_task": 1, "policy_num_steps": 100,
             "policy_entropy_coef": 0.0, "num_frames": 50_000_000}
