"""Options of ReId's finite training tasks and dream environments (Rimon et al. 2022).

Names and defaults follow ReId's point-robot config, except where a schema-wide default must be
neutral for every other env: ``env_num_goals`` defaults to None (no finite pool) and
``num_dream_envs`` to 0 (no dreams); the ReId presets (config/presets/pointrobot_*dream*.py,
*finite_varibad.py) set the paper's values. Additions over ReId: ``env_pool_seed``,
``mixup_alpha``, ``kde_bandwidth`` and ``kde_pool_size`` (ReId: Dirichlet(1), Scott's rule, an
unbounded pool cleared at every refit).

The pieces these options drive live in ``environments/task_pool.py`` and ``dreams/``.
"""
from __future__ import annotations

from config.errors import ConfigError

POS = dict(low=1)


def add_options(add) -> None:
    g = "task_pool"
    add(g, "env_num_goals", "int", None,
        "finite task regime: size of a pool of tasks drawn once from the env's task distribution (seeded by "
        "--env_pool_seed); training draws only from its first --env_num_train_goals, evaluation from its last "
        "--env_num_eval_goals (None: no pool, every BAMDP draws a fresh task, unless --env_num_train_goals or "
        "--env_num_eval_goals is given: then a pool of 1000, as ReId)", optional=True, **POS)
    add(g, "env_num_train_goals", "int", None,
        "training tasks: the first k tasks of the pool (None: every pool task not held out for evaluation)",
        optional=True, **POS)
    add(g, "env_num_eval_goals", "int", None,
        "held-out evaluation tasks: the last k tasks of the pool, disjoint from the training tasks "
        "(None: unlimited, evaluation draws fresh tasks from the env's distribution)", optional=True, **POS)
    add(g, "env_pool_seed", "int", None, "seed of the task pool (None: the run --seed, as in ReId)", optional=True)

    g = "dreams"
    add(g, "num_dream_envs", "int", 0,
        "dream environments: the last k of --num_processes copies are rewarded by the VAE reward decoder at a "
        "latent drawn from the fitted latent density instead of by their real task (0: no dreams)", low=0)
    add(g, "use_kde", "bool", True,
        "draw dream latents from a density fitted to posterior latents (Gaussian KDE, or mixup with --use_mixup); "
        "false: from the encoder's prior")
    add(g, "use_mixup", "bool", False,
        "the fitted density is mixup (Dirichlet-weighted convex combinations of the pool latents) instead of a "
        "Gaussian KDE (needs --use_kde)")
    add(g, "mixup_alpha", "float", 1.0,
        "Dirichlet concentration of the mixup weights over all pool latents (ReId: 1, uniform on the simplex)",
        low=0.0, low_inclusive=False)
    add(g, "kde_bandwidth", "str", "scott",
        "KDE bandwidth: scott (ReId), silverman, or a positive number = scipy's bandwidth factor (kernel "
        "covariance = factor^2 x covariance of the latents)")
    add(g, "delay_dream", "int", 5000,
        "policy updates before the dream copies start dreaming (until then they are real copies on training "
        "tasks; None: from the start)", optional=True, low=0)
    add(g, "update_kde_interval", "int", 3, "refit the dream latent density every k policy updates", **POS)
    add(g, "kde_from_train", "bool", True,
        "when too few running latents are available, fit the density to one posterior latent per training task "
        "(needs a task pool): the encoding of a scripted expert episode on that task where the env-type has an "
        "expert (point robots, as ReId), else the latest real posterior at a BAMDP end on that task")
    add(g, "kde_from_running_latents", "bool", True,
        "fit the density to the posterior latents of the real copies gathered at BAMDP ends since the last refit")
    add(g, "kde_pool_size", "int", 10_000,
        "capacity of the pool of running latents (oldest dropped first; ReId: unbounded, cleared at every refit)",
        **POS)
    add(g, "freeze_vae", "bool", False, "compute and log the VAE loss but never update the VAE (train the policy only)")
    add(g, "delayed_freeze", "int", None,
        "freeze the VAE (as --freeze_vae) once this many policy updates are done (None: never)", optional=True, **POS)
    add(g, "train_vae_on_dream", "bool", False,
        "also train the VAE on the dream copies' trajectories (ReId default: the VAE buffer gets real copies only)")
    add(g, "clone_dream_vae", "bool", False,
        "dream rewards come from a frozen copy of the reward decoder taken when the dreams start (after loading "
        "--saved_reward_decoder) instead of the live, still-training decoder")
    for part in ("policy", "encoder", "reward_decoder", "state_decoder", "task_decoder"):
        add(g, f"saved_{part}", "str", None,
            f"run dir whose latest checkpoint the {part.replace('_', ' ')} is loaded from before training "
            "(None: trained from scratch)", optional=True)


def pool_size(cfg) -> int | None:
    """Size of the finite task pool (``environments.task_pool.pool_size``); None: no pool."""
    from environments.task_pool import pool_size as size

    return size(cfg.env_num_goals, cfg.env_num_train_goals, cfg.env_num_eval_goals)


def latent_sampler_kind(cfg) -> str:
    """Which sampler the dream copies use: "kde", "mixup" or "prior" (dreams.samplers.make_sampler)."""
    if not cfg.use_kde:
        return "prior"
    return "mixup" if cfg.use_mixup else "kde"


def _task_changes(env_name: str) -> str:
    """What differs between the env's tasks ("reward" or "dynamics"; "reward" for unknown names)."""
    from environments import ENVS

    try:
        return getattr(ENVS.get(env_name), "task_changes", "reward")
    except KeyError:
        return "reward"


def validate(cfg) -> None:
    """Cross-field rules of the finite task pool and the dream envs."""
    goals, train, evl = cfg.env_num_goals, cfg.env_num_train_goals, cfg.env_num_eval_goals
    goals = pool_size(cfg)
    if goals is not None:
        n_train = goals - (evl or 0) if train is None else train
        if n_train < 1:
            raise ConfigError(f"--env_num_eval_goals {evl} leaves no training task in a pool of --env_num_goals {goals}")
        if n_train + (evl or 0) > goals:
            raise ConfigError(f"--env_num_train_goals {n_train} + --env_num_eval_goals {evl or 0} > --env_num_goals "
                              f"{goals}: the training and evaluation tasks would overlap; enlarge the pool")
    try:
        from dreams.samplers import parse_bandwidth

        parse_bandwidth(cfg.kde_bandwidth)
    except ValueError as err:
        raise ConfigError(f"--kde_bandwidth: {err}") from None
    if cfg.use_mixup and not cfg.use_kde:
        raise ConfigError("--use_mixup replaces the KDE by mixup: it needs --use_kde true "
                          "(with --use_kde false dream latents come from the prior)")
    if cfg.num_dream_envs == 0:
        return
    if cfg.num_dream_envs >= cfg.num_processes:
        raise ConfigError(f"--num_dream_envs {cfg.num_dream_envs} must be < --num_processes {cfg.num_processes}: "
                          "the latents of the dreams come from real copies")
    if cfg.disable_metalearner or cfg.disable_decoder or not cfg.decode_reward:
        raise ConfigError("dream envs are rewarded by the VAE reward decoder: they need --decode_reward true "
                          "(and no --disable_decoder / --disable_metalearner)")
    if cfg.multihead_for_reward:
        raise ConfigError("dream envs need a regression reward decoder: --multihead_for_reward false")
    if _task_changes(cfg.env_name) == "dynamics" and not cfg.decode_state:
        raise ConfigError(f"dream envs on {cfg.env_name}: its tasks differ in dynamics, so dream transitions come from "
                          "the VAE state decoder: add --decode_state true")
    if cfg.use_kde and not (cfg.kde_from_running_latents or cfg.kde_from_train):
        raise ConfigError("--use_kde needs latents to fit: --kde_from_running_latents true or --kde_from_train true")
    if cfg.use_kde and cfg.kde_from_train and not cfg.kde_from_running_latents and goals is None:
        raise ConfigError("--kde_from_train alone keys latents by training task: it needs a finite pool "
                          "(--env_num_goals)")
