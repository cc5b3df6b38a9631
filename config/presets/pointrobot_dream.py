"""VariBAD with KDE dream environments (ReId, Rimon et al. 2022): 30 training goals on the half
circle, 6 of 16 copies dream from a Gaussian KDE (Scott's rule) over running posterior latents,
refitted every 3 updates, starting after 5000 updates. Mixup variant: --use_mixup true; the
paper's 20-goal run: --env_num_train_goals 20 --num_dream_envs 4.
"""
EXTENDS = "pointrobot_finite_varibad"
OVERRIDES = {
    "exp_label": "varibad_dream",
    "num_dream_envs": 6,
    "use_kde": True,
    "use_mixup": False,
    "kde_bandwidth": "scott",
    "delay_dream": 5000,
    "update_kde_interval": 3,
    "kde_from_train": True,
    "kde_from_running_latents": True,
    "freeze_vae": False,
    "delayed_freeze": None,
    "train_vae_on_dream": False,
    "clone_dream_vae": False,
}
