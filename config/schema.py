"""The one schema of every option: name, type, default, help, group.

Presets (config/presets/*.py) override defaults; the CLI overrides presets. Values derived
from the environment (dims, horizons, number of updates) live in ``utils.spec.RunSpec``,
never here. Option names follow VariBAD/HyperX so that their commands keep working.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Option:
    """One option. Range metadata (checked by ``config.loader.check_value`` for values from the CLI,
    presets, methods and a resumed ``config.json`` alike):

    low / high          bounds of int/float values and of every item of int_list/float_list values
    low_inclusive, high_inclusive
                        whether the bounds themselves are allowed
    finite              floats: refuse nan and +-inf
    min_len / max_len   length bounds of list values
    rule                extra rule: "name" (a plain non-empty name: no path separators, no "..", no
                        control characters), "nonempty" (a non-empty string), "object" (a JSON object)
    """

    name: str
    type: str  # int | float | str | bool | int_list | float_list | json
    default: Any
    help: str
    group: str
    choices: tuple | None = None
    optional: bool = False  # accepts "none"
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    finite: bool = True
    min_len: int | None = None
    max_len: int | None = None
    rule: str | None = None

    def describe_default(self) -> str:
        return "None" if self.default is None else repr(self.default)

    def describe_range(self) -> str:
        """'[0, 1]', '>= 1', '> 0' or '' (no range)."""
        if self.low is not None and self.high is not None:
            return (f"{'[' if self.low_inclusive else '('}{_num(self.low)}, {_num(self.high)}"
                    f"{']' if self.high_inclusive else ')'}")
        if self.low is not None:
            return f"{'>=' if self.low_inclusive else '>'} {_num(self.low)}"
        if self.high is not None:
            return f"{'<=' if self.high_inclusive else '<'} {_num(self.high)}"
        return ""


def _num(x: float) -> str:
    """1.0 -> '1', 10**12 -> '1e12', 0.5 -> '0.5' (bounds in messages)."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e6:
        return str(int(x))
    if abs(x) >= 10**6 and float(f"{x:.0e}") == x:
        return f"{x:.0e}".replace("e+", "e")
    return f"{x:g}" if isinstance(x, float) else str(x)


RANGE_KEYS = ("low", "high", "low_inclusive", "high_inclusive", "finite", "min_len", "max_len", "rule")
# shorthands for the range keywords of ``_add``
POS = dict(low=1)                        # a positive count or size
NONNEG = dict(low=0)                     # zero allowed
POS_F = dict(low=0.0, low_inclusive=False)  # a positive finite float
UNIT = dict(low=0.0, high=1.0)           # a probability, discount or lambda
SIZES = dict(low=1, high=1_000_000)      # layer widths: every item of an int_list
LAYERS = dict(low=1, high=1_000_000, max_len=100)


_OPTIONS: list[Option] = []


def _add(group: str, name: str, type_: str, default, help_: str, choices=None, optional=False, **ranges):
    """Define an option; ``ranges`` are the range keywords of ``Option`` (low, high, ..., rule)."""
    bad = set(ranges) - set(RANGE_KEYS)
    if bad:
        raise TypeError(f"option {name!r}: unknown range keyword(s) {sorted(bad)}; accepted: {', '.join(RANGE_KEYS)}")
    _OPTIONS.append(Option(name, type_, default, help_, group, tuple(choices) if choices else None,
                           optional or default is None, **ranges))


# ----- general ---------------------------------------------------------------------------
g = "general"
_add(g, "env_name", "str", "GridNavi", "registered environment (see environments/)", rule="name")
_add(g, "env_kwargs", "json", {}, "extra keyword arguments for the env constructor, as JSON", rule="object")
_add(g, "trainer", "str", "varibad",
     "training loop: varibad (the on-policy VariBAD family loop) or a sibling trainer registered in trainers/")
_add(g, "method", "str", None, "method preset applied on top of the env-type (see config/methods.py)",
     optional=True)
_add(g, "num_frames", "int", 20_000_000, "total environment frames to train for", low=1, high=10**12)
_add(g, "max_rollouts_per_task", "int", 1, "R: episodes per task (one BAMDP = R*H steps)", low=1, high=10_000)
_add(g, "num_processes", "int", 16, "number of env copies stepped as one batch", low=1, high=100_000)
_add(g, "seed", "int", 73, "random seed (python, numpy, torch, env task generators)", low=0, high=2**63 - 1)
_add(g, "num_seeds", "int", 1, "S: train seeds seed, seed+1, ..., seed+S-1 in one process (VariBAD loop; their policies and "
     "belief encoders step as one batched computation; one run dir per seed inside the run dir)", low=1, high=4096)
_add(g, "stack_seed_updates", "bool", True, "with --num_seeds: the seeds' VAE updates as one computation on stacked "
     "parameters where built (GRU encoder, multi-head reward decoder, overlapped updates; same maths, other "
     "float rounding); false: one update per seed, bit for bit a single run's")
_add(g, "exp_label", "str", "varibad", "label of the run (first part of the run dir name)", rule="name")
_add(g, "results_log_dir", "str", "logs", "root folder of run dirs", rule="nonempty")
_add(g, "device", "str", "auto", "cpu | cuda | auto", choices=("cpu", "cuda", "auto"))
_add(g, "num_threads", "int", 1, "torch CPU threads (small nets run fastest on 1 thread)", low=1, high=1024)
_add(g, "deterministic_execution", "bool", False, "make CUDA ops deterministic (slower)")

# ----- policy inputs ---------------------------------------------------------------------
g = "policy_inputs"
for part, on in (("state", True), ("latent", True), ("belief", False), ("task", False)):
    _add(g, f"pass_{part}_to_policy", "bool", on, f"give the {part} to the policy")
    _add(g, f"policy_{part}_embedding_dim", "int", None,
         f"Linear+activation embedding of the {part} (None: no embedding)", optional=True, **(SIZES | dict(low=0)))
    _add(g, f"norm_{part}_for_policy", "bool", True,
         f"normalise the {part} with running mean/std before the policy")
_add(g, "pass_task_as_onehot_id", "bool", False,
     "give the task to the policy as a one-hot task id (envs with finitely many tasks) instead of its description")
_add(g, "norm_rew_for_policy", "bool", True, "normalise rewards by the std of the discounted return")
_add(g, "norm_rew_clip_param", "float", 10.0, "clip normalised rewards to +-this", **POS_F)
_add(g, "norm_actions_pre_sampling", "bool", False, "tanh on the Gaussian mean")
_add(g, "norm_actions_post_sampling", "bool", False, "tanh-squash the Gaussian sample")
_add(g, "sample_embeddings", "bool", False, "pass a latent sample instead of (mean, logvar)")
_add(g, "add_nonlinearity_to_latent", "bool", False, "ReLU on the latent before the policy")

# ----- policy network ----------------------------------------------------------------------
g = "policy_net"
_add(g, "policy_layers", "int_list", [32], "hidden layer sizes of actor and critic", **LAYERS)
_add(g, "policy_activation_function", "str", "tanh", "activation", choices=("tanh", "relu", "leaky-relu"))
_add(g, "policy_initialisation", "str", "normc", "weight init", choices=("normc", "orthogonal"))
_add(g, "policy_init_std", "float", 1.0, "initial std of the Gaussian policy", **POS_F)

# ----- hypernetwork policy ------------------------------------------------------------------
g = "hypernet"
_add(g, "use_hypernet", "bool", False, "generate the policy's base networks with a hypernetwork")
_add(g, "hypernet_input", "str", "latent", "what conditions the hypernetwork (the base net sees the rest)",
     choices=("latent", "task"))
_add(g, "hypernet_init", "str", "bias_hyperinit", "hypernetwork head initialisation",
     choices=("bias_hyperinit", "weight_hyperinit", "hfi", "naive_kaiming", "naive_normc", "naive_orthogonal"))
_add(g, "hypernet_layers", "int_list", [], "hypernetwork trunk layers (empty: heads read the embedding)", **LAYERS)
_add(g, "policy_layers_hyper", "int_list", None,
     "1/0 per base layer incl. the output head: generated or ordinary (None: all generated)", optional=True,
     low=0, high=1, max_len=100)
_add(g, "hypernet_head_bias", "bool", True, "bias in the hypernetwork heads (Bias-HyperInit needs it)")
_add(g, "use_film", "bool", False, "FiLM: hypernetwork gives per-unit scale and shift instead of weights")

# ----- task-inference supervision (Beck et al. 2023) ---------------------------------------------
g = "task_inference"
_add(g, "task_num_warmup", "int", 0,
     "policy updates during which the policy conditions on its own task embedding instead of the latent "
     "(needs --pass_task_to_policy and equal task/latent embedding sizes)", **NONNEG)
_add(g, "ti_coeff", "float", None,
     "task-inference supervision weight: the VAE task decoder (VariBAD-based models) or the policy's latent "
     "embedding (RNN-based models, --rlloss_through_encoder) regresses the --ti_target, stop-gradient",
     optional=True, low=0.0)
_add(g, "ti_hard_reset", "bool", False, "after the warm-up re-initialise every policy parameter but the task embedding")
_add(g, "ti_target", "str", "task",
     "what the latent side regresses: the policy's task embedding (TI) or the base-network parameters the "
     "hypernetwork generates from it (BI++HN, needs --use_hypernet)", choices=("task", "base_net"))

# ----- RL ------------------------------------------------------------------------------------
g = "rl"
_add(g, "policy", "str", "ppo", "policy optimiser algorithm", choices=("ppo", "a2c"))
_add(g, "policy_optimiser", "str", "adam", "optimiser", choices=("adam", "rmsprop"))
_add(g, "lr_policy", "float", 7e-4, "learning rate of the policy", **POS_F)
_add(g, "policy_anneal_lr", "bool", False, "anneal the policy lr linearly to 0")
_add(g, "policy_eps", "float", 1e-8, "optimiser epsilon", **POS_F)
_add(g, "policy_num_steps", "int", 60, "env steps per copy between policy updates", low=1, high=10**7)
_add(g, "ppo_num_epochs", "int", 2, "PPO epochs per update", low=1, high=10_000)
_add(g, "ppo_num_minibatch", "int", 4, "PPO minibatches per epoch", low=1, high=10**7)
_add(g, "ppo_minibatch_by_env", "bool", False,
     "RL loss through the encoder: split minibatches by env copy (whole trajectories) so each minibatch "
     "recomputes only its copies' latents, instead of random (step, copy) samples that need all of them")
_add(g, "ppo_clip_param", "float", 0.05, "PPO clip range", **POS_F)
_add(g, "ppo_use_huberloss", "bool", True, "Huber value loss")
_add(g, "ppo_use_clipped_value_loss", "bool", True, "clipped value loss")
_add(g, "policy_value_loss_coef", "float", 0.5, "value loss coefficient", low=0.0)
_add(g, "policy_entropy_coef", "float", 0.01, "entropy bonus coefficient", low=0.0)
_add(g, "policy_gamma", "float", 0.95, "discount", **UNIT)
_add(g, "policy_use_gae", "bool", True, "generalised advantage estimation")
_add(g, "policy_tau", "float", 0.95, "GAE lambda", **UNIT)
_add(g, "use_proper_time_limits", "bool", False,
     "treat a BAMDP that ends by its time limit as truncated (bootstrap) instead of terminal")
_add(g, "policy_max_grad_norm", "float", 0.5, "policy gradient clipping", optional=True, **POS_F)

# ----- VAE -----------------------------------------------------------------------------------
g = "vae"
_add(g, "disable_metalearner", "bool", False, "no encoder/VAE at all (oracles, multitask)")
_add(g, "lr_vae", "float", 1e-3, "learning rate of encoder + decoders", **POS_F)
_add(g, "size_vae_buffer", "int", 100_000, "VAE buffer capacity in BAMDP trajectories", low=1, high=10**9)
_add(g, "precollect_len", "int", 5000, "frames to collect before any update", low=0, high=10**12)
_add(g, "vae_batch_num_trajs", "int", 25, "trajectories per VAE batch", low=1, high=10**7)
_add(g, "tbptt_stepsize", "int", None, "truncated BPTT through the encoder every k steps", **POS)
_add(g, "vae_subsample_elbos", "int", None, "ELBO terms sampled per trajectory (None: all)", **POS)
_add(g, "vae_subsample_decodes", "int", None, "reconstructions sampled per ELBO term (None: all)", **POS)
_add(g, "vae_avg_elbo_terms", "bool", False, "average (not sum) over ELBO terms")
_add(g, "vae_avg_reconstruction_terms", "bool", False, "average (not sum) over reconstructed steps")
_add(g, "num_vae_updates", "int", 3, "VAE gradient steps after every policy update", low=0, high=10_000)
_add(g, "pretrain_len", "int", 0, "VAE-only updates before RL starts", low=0, high=10**9)
_add(g, "kl_weight", "float", 1.0, "weight of the KL term", low=0.0)
_add(g, "kl_to_gauss_prior", "bool", False, "KL to N(0,I) for every posterior, not to the previous one")
_add(g, "decode_only_past", "bool", False, "each posterior only reconstructs the past")
_add(g, "disable_kl_term", "bool", False, "drop the KL term")
_add(g, "disable_stochasticity_in_latent", "bool", False, "deterministic latent (decode the mean)")
_add(g, "disable_decoder", "bool", False, "no decoders: the encoder is trained by RL (RL2)")
_add(g, "rlloss_through_encoder", "bool", False, "backpropagate the RL loss into the encoder")
_add(g, "vae_loss_coeff", "float", 1.0, "weight of the VAE loss added to the RL loss (RL2)", low=0.0)
_add(g, "encoder_max_grad_norm", "float", None, "encoder gradient clipping", optional=True, **POS_F)
_add(g, "decoder_max_grad_norm", "float", None, "decoder gradient clipping", optional=True, **POS_F)
_add(g, "vae_buffer_dtype", "str", "float32", "storage type of the VAE buffer (float16 halves its memory)",
     choices=("float32", "float16"))
_add(g, "vae_update_overlap", "bool", True,
     "run the VAE updates on a second thread while the next rollout is collected; the policy then acts "
     "with an encoder one VAE update older (deterministic, resumable). Off: strictly sequential")
_add(g, "checkpoint_vae_buffer", "bool", False,
     "store the whole VAE buffer inside every checkpoint (default: incremental segment files in checkpoints/vae_buffer, "
     "each trajectory written once; resume is exact either way)")

# ----- encoder -------------------------------------------------------------------------------
g = "encoder"
_add(g, "action_embedding_size", "int", 0, "action embedding (0: action not encoded)", **(SIZES | dict(low=0)))
_add(g, "state_embedding_size", "int", 8, "state embedding", **(SIZES | dict(low=0)))
_add(g, "reward_embedding_size", "int", 8, "reward embedding", **(SIZES | dict(low=0)))
_add(g, "encoder_layers_before_gru", "int_list", [], "layers between embeddings and GRU", **LAYERS)
_add(g, "encoder_gru_hidden_size", "int", 64, "GRU hidden size", **SIZES)
_add(g, "encoder_layers_after_gru", "int_list", [], "layers between GRU and latent heads", **LAYERS)
_add(g, "latent_dim", "int", 5, "latent dimension", **SIZES)
_add(g, "encoder_type", "str", "gru", "sequence model of the encoder",
     choices=("gru", "lstm", "transformer", "none"))
_add(g, "encoder_agg_type", "str", None, "history aggregator after the sequence model (SplAgger/AMRL/CNP/PEARL)",
     choices=("sum", "max", "max_norm", "avg", "am", "weighted_avg", "softmax", "gauss"), optional=True)
_add(g, "encoder_skip_type", "str", None, "'split': half skip, half aggregated (SplAgger)", choices=("split",),
     optional=True)
_add(g, "encoder_layers_after_agg", "int_list", [], "layers between aggregator and latent heads", **LAYERS)
_add(g, "encoder_st_estimator", "bool", False, "straight-through max/div gradients (AMRL)")
_add(g, "encoder_max_init_low", "bool", False, "max aggregator starts at -1e6 instead of 0")
_add(g, "encoder_learn_init_state", "bool", False, "learn the initial recurrent/aggregator state")
_add(g, "encoder_invariant_init", "bool", False, "LSTM initialised to act like a sum aggregator")
_add(g, "encoder_softmax_temp", "float", 1.0, "temperature of the softmax aggregator", **POS_F)
_add(g, "encoder_learn_temps", "bool", True, "learn the softmax aggregator temperature")
_add(g, "encoder_wavg_temp", "float", None, "weighted-avg aggregator: exp(w/T) weights (None: softplus)", **POS_F)
_add(g, "full_transitions", "bool", False, "encode (s, a, r, s') instead of (a, r, s')")
_add(g, "transformer_token_size", "int", 16, "transformer encoder token size", **SIZES)
_add(g, "transformer_num_layers", "int", 2, "transformer encoder layers", low=1, high=1000)
_add(g, "transformer_num_heads", "int", 2, "transformer encoder heads", low=1, high=1000)
_add(g, "transformer_mem_size", "int", 256, "transformer encoder memory (steps)", low=1, high=10**7)

# ----- decoders ------------------------------------------------------------------------------
g = "decoder"
_add(g, "decode_reward", "bool", True, "reward decoder")
_add(g, "rew_loss_coeff", "float", 1.0, "weight of the reward reconstruction", low=0.0)
_add(g, "input_prev_state", "bool", True, "reward decoder sees s_t")
_add(g, "input_action", "bool", True, "reward decoder sees a_t")
_add(g, "reward_decoder_layers", "int_list", [64, 32], "reward decoder layers", **LAYERS)
_add(g, "multihead_for_reward", "bool", False, "one reward head per discrete state (grids)")
_add(g, "rew_pred_type", "str", "deterministic", "reward likelihood", choices=("deterministic", "bernoulli"))
_add(g, "decode_state", "bool", False, "state decoder")
_add(g, "state_loss_coeff", "float", 1.0, "weight of the state reconstruction", low=0.0)
_add(g, "state_decoder_layers", "int_list", [64, 32], "state decoder layers", **LAYERS)
_add(g, "decode_task", "bool", False, "task decoder (Humplik et al.)")
_add(g, "task_loss_coeff", "float", 1.0, "weight of the task reconstruction", low=0.0)
_add(g, "task_decoder_layers", "int_list", [64, 32], "task decoder layers", **LAYERS)
_add(g, "task_pred_type", "str", "task_description", "task target",
     choices=("task_id", "task_description"))

_add(g, "normalise_rew_targets", "bool", False,
     "divide reward targets of the VAE by the running max |r| (HyperX treasure hunt)")

# ----- exploration (HyperX) --------------------------------------------------------------------
g = "exploration"
for kind, what in (("hyperstate", "RND on the hyper-state (state, belief)"), ("state", "RND on the state"),
                   ("belief", "RND on the belief"), ("vae_error", "the VAE's reconstruction error")):
    _add(g, f"exploration_bonus_{kind}", "bool", False, f"exploration bonus: {what}")
    _add(g, f"weight_exploration_bonus_{kind}", "float", 1.0, f"weight of the {kind} bonus", low=0.0)
_add(g, "anneal_exploration_bonus_weights", "bool", True, "anneal all bonus weights linearly to 0 over training")
_add(g, "intrinsic_rew_clip_rewards", "float", None, "clip each normalised bonus to +-this", optional=True, **POS_F)
_add(g, "state_expl_idx", "int_list", None, "state dims the RND bonuses look at (None: all)", optional=True,
     low=0, high=10**6, min_len=1)
_add(g, "rnd_lr", "float", 1e-4, "RND predictor learning rate", **POS_F)
_add(g, "rnd_batch_size", "int", 128, "RND training samples per update", low=1, high=10**7)
_add(g, "rnd_update_frequency", "int", 1, "train the RND predictor every k policy updates", low=1, high=10**6)
_add(g, "rnd_output_dim", "int", 128, "RND output size", **SIZES)
_add(g, "rnd_prior_net_layers", "int_list", [256, 256], "RND frozen prior layers", **LAYERS)
_add(g, "rnd_predictor_net_layers", "int_list", [256, 256], "RND predictor layers", **LAYERS)
_add(g, "rnd_norm_inputs", "bool", False, "centre and scale RND inputs by running statistics")
_add(g, "rnd_init_weight_scale", "float", 10.0, "scale of the frozen prior's initial weights", **POS_F)

# ----- logging -------------------------------------------------------------------------------
g = "logging"
_add(g, "log_interval", "int", 500, "TensorBoard scalars every k updates", low=1)
_add(g, "eval_interval", "int", 500, "evaluation every k updates", low=1)
_add(g, "vis_interval", "int", 500, "behaviour/latent plots every k updates", low=1)
_add(g, "save_interval", "int", 1000, "checkpoint every k updates", low=1)
_add(g, "keep_checkpoints", "int", 3, "checkpoints kept (the newest first; a corrupt one falls back to the previous)", low=1)
_add(g, "num_eval_envs", "int", 16, "env copies (= tasks) per evaluation", low=1, high=100_000)
_add(g, "progress_bar", "bool", True, "show a progress bar on stderr")

# ----- option groups of other trainers and components -----------------------------------------
# Each module defines ``add_options(add)`` (``add`` has the signature of ``_add``) and may define
# ``validate(cfg)`` (cross-field rules, raising config.errors.ConfigError). Adding a trainer or a
# component with options means adding its module here, not editing the groups above.
EXTENSIONS = ("config.options_dreams", "config.options_maml", "config.options_hyperzero")


def _load_extensions() -> list:
    import importlib

    mods = []
    for name in EXTENSIONS:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
            continue
        mod.add_options(_add)
        mods.append(mod)
    return mods


EXTENSION_MODULES = _load_extensions()
OPTIONS: dict[str, Option] = {o.name: o for o in _OPTIONS}
if len(OPTIONS) != len(_OPTIONS):
    raise RuntimeError("an option is defined twice in the schema")
GROUPS: list[str] = list(dict.fromkeys(o.group for o in _OPTIONS))

