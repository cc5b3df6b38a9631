"""T-Maze, long and noisy (AMRL): the indicator at the start says which arm pays; 4 episodes/task."""
EXTENDS = "_memory_varibad"
OVERRIDES = {"env_name": "TMaze-LN", "max_rollouts_per_task": 4, "policy_num_steps": 600,
             "env_kwargs": {"maze_length": 100, "max_episode_steps": 150}}
