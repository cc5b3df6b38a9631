"""HyperX's five tasks (Zintgraf et al., ICML 2021) at the presets' (the paper's) budgets:
HyperX vs VariBAD on multi-stage rooms, treasure hunt, sparse point robot, sparse
HalfCheetahDir and sparse AntGoal. Per task 2e7-4e8 frames: a cluster job (``--address``);
``hyperx`` is the CPU-sized subset."""
TASKS = ["room", "treasure_hunt", "pointrobot_sparse", "cds", "sparse_ant_goal"]

SET = dict(
    description="HyperX main results: 5 tasks x (HyperX, VariBAD), each at its preset's frame budget",
    arms=[f"{task}_{method}" for task in TASKS for method in ("hyperx", "varibad")],
    options={"progress_bar": False},
    seeds=[1, 2, 3],
    num_frames="preset",
)
