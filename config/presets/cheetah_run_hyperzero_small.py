"""HyperZero on contextual cheetah-run (the 20 speed margins 0.5..10 of ``cheetah_run_hyperzero``) at a
budget a 2-core CPU finishes in 30-50 minutes (47 min with the box shared; docs/results/hyperzero_cheetah_run/):

* experts: TD3 2 x 64 (seed: 2 x 256), batch 128, Adam 3e-4 (seed: 1e-4), 80k env steps per margin
  (seed: 1.1M), exploration std 1.0 -> 0.1 over 30k steps (seed: 100k), replay 80k (the whole run);
* dataset: 4 deterministic episodes per margin (seed: 10);
* regressors: 10 epochs at Adam 5e-4 (seed: 500 at 1e-4), HyperZero vs the context-MLP baselines
  (mlp_policy, mlp_rl, mlp_rl_td), each trained with 3 regressor seeds on the same experts / dataset /
  split (test fraction 0.15 as in the seed: margins 8.5, 9, 9.5 are held out at --seed 73).

Everything else (architecture of the approximators, loss weights, batch 512, TD3's other settings)
is the seed's.
"""
EXTENDS = "cheetah_run_hyperzero"
OVERRIDES = {
    "exp_label": "hyperzero_small", "num_frames": 80_000,
    "td3_hidden": 64, "td3_batch_size": 128, "td3_lr": 3e-4, "td3_std_steps": 30_000, "td3_buffer_size": 80_000,
    "hyperzero_rollout_episodes": 4, "hyperzero_epochs": 10, "hyperzero_lr": 5e-4,
    "hyperzero_approximators": "hyperzero,mlp_policy,mlp_rl,mlp_rl_td", "hyperzero_regressor_seeds": [1, 2, 3],
    "eval_interval": 10, "save_interval": 10,
}
