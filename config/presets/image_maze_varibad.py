"""Procedural maze with 3x10x10 image observations (after AMRL's Minecraft maze), 2 episodes/task."""
EXTENDS = "_memory_varibad"
OVERRIDES = {"env_name": "ImageMaze", "max_rollouts_per_task": 2, "policy_num_steps": 400,
             "policy_anneal_lr": True, "num_frames": 60_000_000}
