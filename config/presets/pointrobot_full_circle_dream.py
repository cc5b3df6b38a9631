"""ReId's KDE dream environments on the full circle: 30 training goals (paper: 30 and 40), 2 of 16
copies dream."""
EXTENDS = "pointrobot_dream"
OVERRIDES = {
    "exp_label": "varibad_dream_full_circle",
    "env_kwargs": {"goal_sampler": "circle"},
    "num_dream_envs": 2,
}
