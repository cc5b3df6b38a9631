"""Hypernetworks on the grid, a short pilot: RNN+HN vs RNN vs VI+HN and the task-inference
variants (the README's 2.5e5-frame table). Was ``learning_comparison.py --suite hypernet_grid``."""
SET = dict(
    description="Beck et al. 2023/2024: RNN+HN vs RNN vs VI+HN on a grid (+ the task-inference variants)",
    env_types=["gridworld_varibad"],
    methods=["rnn_hn", "rnn", "vi_hn", "ti_hn", "bi_pp_hn"],
    options={"eval_interval": 20, "progress_bar": False},
    seeds=[1, 2, 3],
    num_frames=2.5e5,
)
