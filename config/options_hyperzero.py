"""Options of the HyperZero pipeline (``--trainer hyperzero``): TD3 experts on a grid of contexts,
their rollout dataset, the context -> policy regressors (HyperZero and baselines) and the
zero-shot evaluation on held-out contexts. Defaults are HyperZero's settings.

``num_frames`` is the number of TD3 env steps *per context* (all contexts step together); one
trainer iteration of the experts stage is ``hyperzero_steps_per_iteration`` of them. The
regressor stage has one iteration per epoch (every approximator trains one epoch).
"""
from __future__ import annotations

from config.errors import ConfigError

STAGES = ("experts", "dataset", "regressor", "evaluate", "all")


def add_options(add) -> None:
    g = "hyperzero"
    add(g, "hyperzero_stage", "str", "all",
        "pipeline stage(s) this run does: experts (TD3 per context), dataset (expert rollouts), regressor (train the "
        "approximators), evaluate (zero-shot on held-out contexts), or all of them in one run dir", choices=STAGES)
    add(g, "hyperzero_margins", "float_list", [10.0],
        "reward contexts: speed margins of the tolerance reward (negative: the other direction; 0 not allowed)")
    add(g, "hyperzero_lengths", "float_list", None,
        "dynamics contexts: body lengths (None: the domain's default length only)", optional=True)
    add(g, "hyperzero_input", "str", "rew", "what the approximators are given: reward, dynamics or both contexts",
        choices=("rew", "dyn", "rew_dyn"))
    add(g, "hyperzero_approximators", "str", "all",
        "comma-separated approximators to train: hyperzero, hyperzero_without_td, hyperzero_without_q, mlp_policy, "
        "mlp_rl, mlp_rl_td (all: every one)")
    add(g, "hyperzero_episode_steps", "int", 1000, "env steps per episode (DMC: 1000)", low=1)
    add(g, "hyperzero_steps_per_iteration", "int", 1000, "TD3 env steps (of every context) per trainer iteration", low=1)
    add(g, "hyperzero_rollout_episodes", "int", 10, "deterministic expert episodes per context in the dataset", low=1)
    add(g, "hyperzero_epochs", "int", 500, "regressor training epochs", low=1)
    add(g, "hyperzero_batch_size", "int", 512, "regressor minibatch", low=1)
    add(g, "hyperzero_lr", "float", 1e-4, "regressor Adam learning rate", low=0, low_inclusive=False)
    add(g, "hyperzero_value_weight", "float", 0.01, "weight of the value loss MSE(Q(s, a*), Q*)", low=0)
    add(g, "hyperzero_td_weight", "float", 0.01, "weight of the TD-consistency loss", low=0)
    add(g, "hyperzero_hidden", "int", 256, "hidden width of the generated (and baseline) policy / Q networks", low=1)
    add(g, "hyperzero_embed_widths", "int_list", [64, 128, 256], "meta-embedding widths (2 residual blocks each)",
        low=1, min_len=1)
    add(g, "hyperzero_test_fraction", "float", 0.15, "fraction of unique contexts held out", low=0, high=1,
        low_inclusive=False, high_inclusive=False)
    add(g, "hyperzero_regressor_seeds", "int_list", None,
        "seeds of the regressors: every approximator is trained (initialisation and minibatch order) and evaluated once "
        "per seed, on the same dataset and train/test split (the split and the experts use --seed); results are also "
        "reported as mean and spread over the seeds (None: one regressor per approximator, seeded with --seed)",
        optional=True, min_len=1, low=0)
    add(g, "hyperzero_eval_checkpoint", "str", "best",
        "regressor weights evaluated zero-shot: best validation total loss, or the last epoch (the seed code's eval)",
        choices=("best", "last"))
    add(g, "hyperzero_checkpoint_buffers", "bool", True,
        "store the experts' replay buffers in checkpoints (exact resume; ~3.7 GB for 20 contexts x 1.1M cheetah steps); "
        "false: a resumed run refills them for td3_seed_frames steps")
    add(g, "hyperzero_experts_run", "str", None, "run dir of an experts stage (for --hyperzero_stage dataset)",
        optional=True)
    add(g, "hyperzero_dataset_dir", "str", None,
        "dataset dir (for --hyperzero_stage regressor / evaluate; default: <run dir>/dataset)", optional=True)
    add(g, "hyperzero_models_run", "str", None, "run dir of a regressor stage (for --hyperzero_stage evaluate)",
        optional=True)

    g = "td3"
    add(g, "td3_hidden", "int", 256, "actor and critic hidden width (2 layers)", low=1)
    add(g, "td3_lr", "float", 1e-4, "actor and critic Adam learning rate", low=0, low_inclusive=False)
    add(g, "td3_tau", "float", 0.01, "Polyak rate of the target networks", low=0, high=1)
    add(g, "td3_gamma", "float", 0.99, "discount of the experts (also used in HyperZero's TD loss)", low=0, high=1)
    add(g, "td3_policy_delay", "int", 2, "actor and target update every k critic updates", low=1)
    add(g, "td3_batch_size", "int", 256, "TD3 minibatch (HyperZero: 512 for walker)", low=1)
    add(g, "td3_buffer_size", "int", 1_000_000, "replay capacity per context", low=1)
    add(g, "td3_expl_steps", "int", 2000, "uniform-random action steps at the start", low=0)
    add(g, "td3_seed_frames", "int", 4000, "env steps before the first update", low=0)
    add(g, "td3_std_init", "float", 1.0, "exploration std at step 0", low=0)
    add(g, "td3_std_final", "float", 0.1, "exploration std after td3_std_steps", low=0)
    add(g, "td3_std_steps", "int", 100_000, "steps of the linear exploration-std schedule", low=1)
    add(g, "td3_stddev_clip", "float", 0.3, "clip of the target-policy smoothing noise", low=0)


def approximator_names(cfg) -> list[str]:
    from models.hyperzero import APPROXIMATORS

    if cfg.hyperzero_approximators.strip() == "all":
        return list(APPROXIMATORS)
    return [n.strip() for n in cfg.hyperzero_approximators.split(",") if n.strip()]


def regressor_seeds(cfg) -> list[int]:
    return list(cfg.hyperzero_regressor_seeds) if cfg.hyperzero_regressor_seeds else [cfg.seed]


def regressor_labels(cfg) -> list[tuple[str, str, int]]:
    """(label, approximator, seed) of every regressor, seeds outer: the label is the approximator's name
    without --hyperzero_regressor_seeds, else ``<name>_seed<seed>``."""
    if not cfg.hyperzero_regressor_seeds:
        return [(n, n, cfg.seed) for n in approximator_names(cfg)]
    return [(f"{n}_seed{s}", n, s) for s in regressor_seeds(cfg) for n in approximator_names(cfg)]


def validate(cfg) -> None:
    """Cross-field rules of the hyperzero trainer (only checked for its configs)."""
    if cfg.trainer != "hyperzero":
        return
    known = ("hyperzero", "hyperzero_without_td", "hyperzero_without_q", "mlp_policy", "mlp_rl", "mlp_rl_td")
    names = approximator_names(cfg)
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise ConfigError(f"--hyperzero_approximators: unknown {bad or '(none)'}; choose from all, {', '.join(known)}")
    seeds = cfg.hyperzero_regressor_seeds or []
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--hyperzero_regressor_seeds: repeated seed(s) in {list(seeds)}")
    if any(m == 0 for m in cfg.hyperzero_margins) or not cfg.hyperzero_margins:
        raise ConfigError("--hyperzero_margins: give at least one margin, none of them 0 (no speed term)")
    if cfg.hyperzero_lengths is not None and any(x <= 0 for x in cfg.hyperzero_lengths):
        raise ConfigError("--hyperzero_lengths must be > 0")
    stage = cfg.hyperzero_stage
    if stage == "dataset" and not cfg.hyperzero_experts_run:
        raise ConfigError("--hyperzero_stage dataset needs --hyperzero_experts_run <run dir of an experts stage>")
    if stage in ("regressor", "evaluate") and not cfg.hyperzero_dataset_dir:
        raise ConfigError(f"--hyperzero_stage {stage} needs --hyperzero_dataset_dir <dataset dir>")
    if stage == "evaluate" and not cfg.hyperzero_models_run:
        raise ConfigError("--hyperzero_stage evaluate needs --hyperzero_models_run <run dir of a regressor stage>")
    if stage == "all":
        n_m, n_l = len(set(cfg.hyperzero_margins)), len(set(cfg.hyperzero_lengths or [None]))
        unique = {"rew": n_m, "dyn": n_l, "rew_dyn": n_m * n_l}[cfg.hyperzero_input]
        if unique < 2:
            raise ConfigError(f"--hyperzero_input {cfg.hyperzero_input}: the context grid has {unique} distinct value(s); "
                              "the train/test split needs at least 2 (add --hyperzero_margins / --hyperzero_lengths)")
    if stage in ("experts", "all") and cfg.td3_batch_size > cfg.td3_buffer_size:
        raise ConfigError("--td3_batch_size is larger than --td3_buffer_size")
