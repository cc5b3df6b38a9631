"""Shared base of the HyperZero presets (not an env-type): TD3 experts for 1.1M frames per context
(iterations of 1000 env steps, evaluated every 10k frames), 10 expert episodes per context, the
regressors for 500 epochs (Adam 1e-4, batch 512), test fraction 0.15."""
OVERRIDES = {
    "trainer": "hyperzero", "exp_label": "hyperzero", "num_frames": 1_100_000,
    "hyperzero_steps_per_iteration": 1000, "hyperzero_episode_steps": 1000, "hyperzero_rollout_episodes": 10,
    "hyperzero_epochs": 500, "hyperzero_batch_size": 512, "hyperzero_lr": 1e-4,
    "log_interval": 1, "eval_interval": 10, "vis_interval": 1000, "save_interval": 50,
}
