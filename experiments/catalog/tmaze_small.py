"""SplAgger vs RNN+HN on a T-maze (T-LN) small enough for a CPU: corridor 20, 40 steps per
episode, smaller networks. Was ``learning_comparison.py --suite tmaze_small``."""
SMALL = {"env_kwargs": {"maze_length": 20, "max_episode_steps": 40}, "policy_num_steps": 160,
         "policy_layers": [64, 32], "policy_state_embedding_dim": 32, "encoder_gru_hidden_size": 64}

SET = dict(
    description="SplAgger (Beck et al. 2024) vs RNN+HN on a small T-LN",
    env_types=["tmaze_ln_varibad"],
    methods=["splagger", "rnn_hn"],
    options={**SMALL, "progress_bar": False},
    seeds=[1, 2, 3],
    num_frames=3e5,
    score="success",
)
