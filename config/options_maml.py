"""Options of the gradient-based trainer (``--trainer maml``): MAML-TRPO, E-MAML, MAML+noise,
VIME exploration (MAML+expl) and MIME (meta-learned eta). Defaults are pytorch-maml-rl's yaml
settings; MIME's differ only in the presets (config/presets/*maml*.py, *mime*.py, *emaml*.py).

The policy reuses the schema's ``policy_layers`` / ``policy_activation_function`` /
``policy_init_std``, the discount ``policy_gamma`` and the GAE lambda ``policy_tau``; the number of
meta-iterations is ``num_frames`` divided by the frames of one (meta_batch * fast_batch * H * (inner
steps + 1)).

MIME's implementation quirks (reference section 2.9) and what became of them:
  1. valid-ELBO chunk loop ``elbo =`` instead of ``+=``   fixed; ``--dyn_elbo_last_chunk`` restores it
  2. KL(new || old) used softplus(old_mu) as the old std   fixed (models/bnn.py); no flag (unused by MIME's default path)
  3. one local-reparameterisation noise vector per batch   fixed (noise per row); ``--dyn_shared_eps`` restores it
  4. --add-noise scale 0.1 (README: 1)                     ``--reward_noise_std`` (default 0.1, MIME's code)
  5. rewards standardised per batch for every variant      ``--maml_normalize_rewards`` (off: upstream MAML; on in the
                                                           MIME-family presets)
  6. pendulum task sampler off-by-one, dog ignores num_tasks   environment code (environments/)
  7. fixed eta read from ``adaptable-eta``                 one option, ``--eta_init``, for fixed and learnt eta
  8. eta objective: per-step standardised rewards          ``--eta_objective reward`` (MIME) or ``return``
  9. dynamics Adam recreated per call, lr * num_tasks^2    fixed (one persistent Adam); ``--dyn_mime_optimiser`` restores it
  10. the bonus starts after pre_epochs + 1 meta-iterations   ours after ``pre_epochs`` (the original compares its
      (the original's counter is compared with ``>``)        counter with ``>``); ``--pre_epochs 4`` matches its 3
  11. TRPO step NaN when every post-update reward is 0      ours takes no step (same outcome, no NaN)
Not replicated: MIME keeps one Adam state along a trajectory while computing the information gain
(sequential by construction); here each transition's update is independent (exploration/vime.py).
"""
from __future__ import annotations

from config.errors import ConfigError


def add_options(add) -> None:
    g = "maml"
    add(g, "maml_meta_batch", "int", 20, "tasks per meta-iteration")
    add(g, "maml_fast_batch", "int", 20, "trajectories per task and inner step (all tasks step in one batched env)")
    add(g, "maml_num_inner_steps", "int", 1, "inner-loop policy-gradient steps")
    add(g, "maml_test_inner_steps", "int", None, "inner steps at evaluation (None: maml_num_inner_steps; MIME tests 10)",
        optional=True)
    add(g, "maml_fast_lr", "float", 0.1, "inner-loop step size")
    add(g, "maml_first_order", "bool", False, "first-order MAML (no gradient through the inner step)")
    add(g, "maml_normalize_rewards", "bool", False,
        "standardise rewards per task batch before the baseline (MIME does it for every variant; upstream MAML does not)")
    add(g, "add_noise", "bool", False, "MAML+noise: add reward_noise_std * N(0,1) to the (standardised) rewards")
    add(g, "reward_noise_std", "float", 0.1,
        "std of the MAML+noise reward noise (MIME's code: 0.1 of the standardised reward; its README says 1)")
    add(g, "e_maml", "bool", False, "E-MAML: add the pre-update sampling term to the outer objective")
    add(g, "e_maml_mode", "str", "trajectory",
        "E-MAML term: each pre-update trajectory's likelihood ratio weighted by its task's post-update return "
        "(trajectory), or MIME's step-wise pairing ratio_pre[t,f] * A_valid[t,f] (elementwise)",
        choices=("trajectory", "elementwise"))

    g = "trpo"
    add(g, "trpo_max_kl", "float", 1e-2, "trust region: max mean KL(old || new) of the post-update policy")
    add(g, "trpo_cg_iters", "int", 10, "conjugate-gradient iterations")
    add(g, "trpo_cg_damping", "float", 1e-5, "damping added to the Fisher-vector product")
    add(g, "trpo_ls_max_steps", "int", 15, "backtracking line-search steps")
    add(g, "trpo_ls_backtrack_ratio", "float", 0.8, "line-search step shrink factor")

    g = "vime"
    add(g, "use_vime", "bool", False, "VIME information-gain bonus with a MAML-adapted Bayesian dynamics model (MAML+expl)")
    add(g, "adapt_eta", "bool", False, "MIME: meta-learn the bonus weight eta (needs --use_vime, second-order adaptation)")
    add(g, "eta_init", "float", 0.1, "initial sigmoid(eta): the bonus weight is sigmoid(eta) + eta_floor")
    add(g, "eta_floor", "float", 0.05, "floor of both reward weights (MIME: 0.05; they sum to 1 + 2 * floor)")
    add(g, "eta_lr", "float", 1000.0, "eta step size (MIME: 1000 sparse navigation, 10 dense / ML10); steps clipped at 0.3")
    add(g, "eta_objective", "str", "reward",
        "eta's meta-objective on post-update data: per-step extrinsic rewards (MIME) or reward-to-go (return)",
        choices=("reward", "return"))
    add(g, "pre_epochs", "int", 3, "meta-iterations without bonus (and without eta updates) while the dynamics prior trains")
    add(g, "dyn_hidden", "int_list", [32], "hidden layers of the Bayesian dynamics model (tanh)")
    add(g, "dyn_lr", "float", 1e-4, "inner-loop SGD step of the dynamics ELBO, and the info-gain step size")
    add(g, "dyn_meta_lr", "float", 1e-4, "Adam learning rate of the dynamics prior (meta-update)")
    add(g, "dyn_prior_sd", "float", 0.01, "prior std of the dynamics weights (MIME: 0.01 navigation, 0.5 pendulum)")
    add(g, "dyn_likelihood_sd", "float", 0.1, "std of the Gaussian likelihood of the next observation")
    add(g, "dyn_mc_samples", "int", 3, "Monte-Carlo weight samples per ELBO / info-gain evaluation")
    add(g, "dyn_warmup_updates", "int", 50, "dynamics meta-updates at the first iteration (then one per iteration)")
    add(g, "dyn_shared_eps", "bool", False,
        "MIME's local-reparameterisation quirk: one noise vector shared by all rows of a batch (default: per row)")
    add(g, "dyn_elbo_last_chunk", "bool", False,
        "MIME's quirk: only the last 128-transition chunk of the valid data enters the dynamics meta-loss")
    add(g, "dyn_mime_optimiser", "bool", False,
        "MIME's quirk: a new Adam at every meta-update with lr * meta_batch^2 (default: one persistent Adam)")
    add(g, "info_gain_method", "str", "step",
        "information gain: KL after one update step (step) or VIME's second-order approximation",
        choices=("step", "second_order"))
    add(g, "info_gain_rule", "str", "sgd",
        "update of the step method: sgd, or adam = a fresh Adam's first step (lr * sign(g): the KL then hardly "
        "depends on the transition)", choices=("sgd", "adam"))
    add(g, "info_gain_second_order_step", "float", 0.01, "step size lambda of the second-order approximation")
    add(g, "info_gain_clip", "float", 1000.0, "clip of each transition's information gain")
    add(g, "bonus_normalisation", "str", "batch",
        "bonus normalisation: standardise per task batch (batch, MIME) or divide by the mean of the last 10 "
        "batch medians (median, VIME)", choices=("batch", "median"))


def validate(cfg) -> None:
    """Cross-field rules of the maml trainer (only checked for its configs)."""
    if cfg.trainer != "maml":
        return
    if cfg.device == "cuda":
        raise ConfigError("--trainer maml runs on the CPU (tiny networks, MuJoCo envs step on the CPU): "
                          "use --device cpu or auto")
    for key in ("maml_meta_batch", "maml_fast_batch", "maml_num_inner_steps", "trpo_cg_iters", "trpo_ls_max_steps",
                "dyn_mc_samples"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"--{key} must be >= 1, got {getattr(cfg, key)}")
    if cfg.maml_test_inner_steps is not None and cfg.maml_test_inner_steps < 0:
        raise ConfigError(f"--maml_test_inner_steps must be >= 0, got {cfg.maml_test_inner_steps}")
    for key in ("maml_fast_lr", "trpo_max_kl", "dyn_prior_sd", "dyn_likelihood_sd"):
        if getattr(cfg, key) <= 0:
            raise ConfigError(f"--{key} must be > 0, got {getattr(cfg, key)}")
    if not 0.0 < cfg.trpo_ls_backtrack_ratio < 1.0:
        raise ConfigError(f"--trpo_ls_backtrack_ratio must be in (0, 1), got {cfg.trpo_ls_backtrack_ratio}")
    if not 0.0 < cfg.eta_init < 1.0:
        raise ConfigError(f"--eta_init is sigmoid(eta) and must be in (0, 1), got {cfg.eta_init}")
    if cfg.pre_epochs < 0:
        raise ConfigError(f"--pre_epochs must be >= 0, got {cfg.pre_epochs}")
    if cfg.adapt_eta and not cfg.use_vime:
        raise ConfigError("--adapt_eta learns the weight of the VIME bonus: also set --use_vime true")
    if cfg.adapt_eta and cfg.maml_first_order:
        raise ConfigError("--adapt_eta needs second-order adaptation: with --maml_first_order the adapted policy does "
                          "not depend on eta, so its meta-gradient is zero. Set --maml_first_order false")
    if cfg.use_vime and cfg.e_maml:
        raise ConfigError("--use_vime with --e_maml is not defined (as in MIME): choose one")
