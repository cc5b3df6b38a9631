"""ReId (Rimon et al. 2022): VariBAD vs VariBAD + KDE dreams vs VariBAD + mixup dreams on the
sparse half-circle point robot with 20 and 30 training tasks (4 / 6 of 16 copies dreaming),
held-out return on the last 50 goals of a pool of 1000, ReId's seeds.

At a budget this 2-core machine affords (all 30 runs in ~20 minutes): 2.5e5 frames per run (the
paper: 1e8, curves to ~6.8e7) and ``delay_dream`` scaled with it (ReId: 5000 of ~31,000 updates
= 16%; here 13 of 78 updates). Run: ``python -m experiments.run dreams_pointrobot --max-concurrent 2``."""

_DREAM = {"delay_dream": 13}
_ARMS = []
for n_train, n_dream in ((20, 4), (30, 6)):
    common = {"env_num_train_goals": n_train}
    _ARMS += [
        dict(env_type="pointrobot_finite_varibad", label=f"varibad_{n_train}", options=dict(common)),
        dict(env_type="pointrobot_dream", label=f"kde_dreams_{n_train}",
             options={**common, **_DREAM, "num_dream_envs": n_dream}),
        dict(env_type="pointrobot_dream", label=f"mixup_dreams_{n_train}",
             options={**common, **_DREAM, "num_dream_envs": n_dream, "use_mixup": True}),
    ]

SET = dict(
    description="ReId: dreams improve held-out return with few training tasks",
    arms=_ARMS,
    options={"eval_interval": 10, "log_interval": 10, "vis_interval": 1000, "save_interval": 20, "progress_bar": False},
    seeds=[3, 13, 23, 33, 43],
    num_frames=2.5e5,
)
