"""Main results of the hypernetwork / SplAgger papers (Beck et al. 2023, 2024) on the T-mazes
at the presets' XL size (corridor 100): RNN+HN, RNN, VI+HN and SplAgger with a learning-rate
sweep; ``plot`` picks the best learning rate per method (best final mean).

At ~250 frames/s on a CPU one 2e7-frame trial takes about a day: run it on a cluster
(``--address``), or use ``tmaze_small`` for a CPU-sized T-maze."""
SET = dict(
    description="Beck et al. 2023/2024 main results, T-mazes (T-LN, T-LS, Agree, Latent)",
    env_types=["tmaze_ln_varibad", "tmaze_ls_varibad", "tmaze_agree_varibad", "tmaze_latent_varibad"],
    methods=["rnn_hn", "rnn", "vi_hn", "splagger"],
    grid={"lr_policy": [1e-3, 3e-4, 1e-4]},
    options={"progress_bar": False},
    seeds=[1, 2, 3],
    num_frames=2e7,
    score="success",
)
