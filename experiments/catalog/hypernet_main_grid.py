"""Main results of "Recurrent hypernetworks are surprisingly strong in meta-RL" (Beck et al.
2023) on the grid: every method with a learning-rate sweep; ``plot`` picks the best learning
rate per method by its final mean (as the paper's repository does) and compares those.

3e6 frames (plain VariBAD reaches 5/10/11/11 there, README). 11 methods x 3 learning rates x 3 seeds = 99 trials: a cluster job
(``--address``), or ``--asha`` to stop poor learning rates early."""
SET = dict(
    description="Beck et al. 2023 main results, grid: RNN+HN, RNN, VI+HN, VI, TI variants, BI++HN, Multi+HN (oracle)",
    env_types=["gridworld_varibad"],
    methods=["rnn_hn", "rnn", "rnn_s", "vi_hn", "vi", "ti", "ti_pp", "ti_hn", "ti_pp_hn", "bi_pp_hn", "multi_hn"],
    grid={"lr_policy": [1e-3, 3e-4, 1e-4]},
    options={"eval_interval": 50, "log_interval": 50, "progress_bar": False},
    seeds=[1, 2, 3],
    num_frames=3e6,
)
