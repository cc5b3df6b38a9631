"""HyperX vs VariBAD on treasure hunt and rooms (the README's 2e6-frame comparison; the paper
trains 50x longer). Was ``benchmarks/learning_comparison.py --suite hyperx``."""
SET = dict(
    description="HyperX (ICML 2021): without hyper-state bonuses the agent circles the mountain / misses later stages",
    arms=["treasure_hunt_hyperx", "treasure_hunt_varibad", "room_hyperx", "room_varibad"],
    options={"eval_interval": 50, "log_interval": 50, "vis_interval": 400, "progress_bar": False},
    seeds=[1, 2, 3],
    num_frames=2e6,
)
