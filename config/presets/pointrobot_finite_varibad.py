"""VariBAD on a finite set of training tasks: ReId's no-dream baseline (Rimon et al. 2022, notes B.5).

Sparse point robot, goals on the half circle; a pool of 1000 goals, 30 for training, 50 held out.
ReId's point-robot settings where they differ from VariBAD's (pointrobot_varibad).
"""
EXTENDS = "pointrobot_varibad"
OVERRIDES = {
    "exp_label": "varibad_finite",
    "num_frames": 100_000_000,
    "num_processes": 16,
    "max_rollouts_per_task": 2,
    "policy_layers": [128, 128],
    "ppo_num_minibatch": 4,
    "ppo_clip_param": 0.05,
    "policy_entropy_coef": 0.01,
    "policy_gamma": 0.97,
    "precollect_len": 0,
    "vae_batch_num_trajs": 5,
    "task_pred_type": "task_description",
    "log_interval": 50,
    "eval_interval": 50,
    "save_interval": 1000,
    "seed": 206,
    "env_num_goals": 1000,
    "env_num_train_goals": 30,
    "env_num_eval_goals": 50,
    "num_dream_envs": 0,
}
