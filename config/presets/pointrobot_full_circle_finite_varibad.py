"""ReId's no-dream baseline on the full circle: goals on the whole unit circle (SparsePointEnv with
goal_sampler="circle"), 30 training goals of a pool of 1000, 50 held out (paper: 30 and 40)."""
EXTENDS = "pointrobot_finite_varibad"
OVERRIDES = {
    "exp_label": "varibad_finite_full_circle",
    "env_kwargs": {"goal_sampler": "circle"},
}
