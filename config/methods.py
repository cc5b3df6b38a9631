"""Method presets: the option combinations that turn the one MetaLearner loop into a method.

Env-type presets compose them: ``OVERRIDES = {**RL2, "latent_dim": 32}``.
"""

# VariBAD is the schema default: VAE belief (reward decoder, KL), policy on (state, belief).
VARIBAD = dict(exp_label="varibad")

# RL2: the recurrent encoder is trained only by the RL loss; no decoder, no KL; the policy
# sees the encoder output only.
RL2 = dict(
    exp_label="rl2",
    disable_decoder=True,
    disable_kl_term=True,
    rlloss_through_encoder=True,
    decode_reward=False,
    pass_state_to_policy=False,
    pass_latent_to_policy=True,
    norm_latent_for_policy=False,
    precollect_len=0,
    num_vae_updates=0,
)

# Humplik et al. (2019): the belief is trained to predict the task, not to reconstruct.
HUMPLIK = dict(
    exp_label="humplik",
    decode_reward=False,
    decode_task=True,
    task_pred_type="task_description",
)

# Belief oracle: no encoder; the policy sees the env's exact Bayes belief.
BELIEF_ORACLE = dict(
    exp_label="belief_oracle",
    disable_metalearner=True,
    pass_latent_to_policy=False,
    pass_belief_to_policy=True,
    decode_reward=False,
    precollect_len=0,
)

# Multi-task oracle: no encoder; the policy sees the true task.
MULTITASK = dict(
    exp_label="multitask",
    disable_metalearner=True,
    pass_latent_to_policy=False,
    pass_task_to_policy=True,
    decode_reward=False,
    precollect_len=0,
    max_rollouts_per_task=1,
)

# HyperX: VariBAD + hyper-state RND + VAE-error bonus (weights are per env-type).
HYPERX = dict(
    exp_label="hyperx",
    exploration_bonus_hyperstate=True,
    exploration_bonus_vae_error=True,
    anneal_exploration_bonus_weights=True,
)

# "VariBAD + state novelty": a state-only RND bonus (HyperX's x_state ablation).
VARIBAD_X_STATE = dict(exp_label="varibad_x_state", exploration_bonus_state=True)


# ---- methods of the hypernetwork / SplAgger papers, applied with --method on any env-type ----
# (Beck et al. 2022, 2023, 2024). RNN = RL2 with the state also seen by the base net where noted.
_HN = dict(use_hypernet=True, hypernet_input="latent", hypernet_init="bias_hyperinit")
_RNN_HN = {**RL2, **_HN, "pass_state_to_policy": True}
_SPLIT_MAX = dict(full_transitions=True, encoder_skip_type="split", encoder_agg_type="max", latent_dim=12)

METHODS = {
    "varibad": {**VARIBAD, "exp_label": "varibad"},
    "vi": {**VARIBAD, "exp_label": "vi"},
    "vi_hn": {**VARIBAD, **_HN, "exp_label": "vi_hn"},
    "rnn": {**RL2, "exp_label": "rnn"},
    "rnn_s": {**RL2, "pass_state_to_policy": True, "exp_label": "rnn_s"},
    "rnn_hn": {**_RNN_HN, "exp_label": "rnn_hn"},
    "ti_naive": {**VARIBAD, "decode_task": True, "task_pred_type": "task_description", "task_loss_coeff": 1.0,
                 "exp_label": "ti_naive"},
    "multi_hn": {**MULTITASK, **_HN, "hypernet_input": "task", "pass_state_to_policy": True,
                 "exp_label": "multi_hn"},
    "splagger": {**_RNN_HN, **_SPLIT_MAX, "exp_label": "splagger"},
    "splagger_avg": {**_RNN_HN, **_SPLIT_MAX, "encoder_agg_type": "avg", "exp_label": "splagger_avg"},
    "splagger_avgmax": {**_RNN_HN, **_SPLIT_MAX, "encoder_agg_type": "am", "exp_label": "splagger_avgmax"},
    "splagger_softmax": {**_RNN_HN, **_SPLIT_MAX, "encoder_agg_type": "softmax", "encoder_softmax_temp": 0.1,
                         "exp_label": "splagger_softmax"},
    "splagger_wavg": {**_RNN_HN, **_SPLIT_MAX, "encoder_agg_type": "weighted_avg", "exp_label": "splagger_wavg"},
    "splagger_nornn": {**_RNN_HN, **_SPLIT_MAX, "encoder_type": "none", "exp_label": "splagger_nornn"},
    "splagger_nosplit": {**_RNN_HN, **_SPLIT_MAX, "encoder_skip_type": None, "exp_label": "splagger_nosplit"},
    "amrl": {**_RNN_HN, **_SPLIT_MAX, "encoder_st_estimator": True, "exp_label": "amrl"},
    "amrl_nornn": {**_RNN_HN, **_SPLIT_MAX, "encoder_type": "none", "encoder_skip_type": None,
                   "encoder_st_estimator": True, "exp_label": "amrl_nornn"},
    "max": {**_RNN_HN, **_SPLIT_MAX, "encoder_type": "none", "encoder_skip_type": None, "exp_label": "max"},
    "cnp_hn": {**_RNN_HN, "full_transitions": True, "encoder_type": "none", "encoder_agg_type": "avg",
               "exp_label": "cnp_hn"},
    "pearl": {**VARIBAD, "full_transitions": True, "encoder_type": "none", "encoder_agg_type": "gauss",
              "rlloss_through_encoder": True, "kl_weight": 1e-6, "exp_label": "pearl"},
    "inv_init": {**_RNN_HN, "encoder_type": "lstm", "encoder_invariant_init": True, "exp_label": "inv_init"},
    "transformer": {**_RNN_HN, "encoder_type": "transformer", "exp_label": "transformer"},
}
# Task-inference supervision (Beck et al. 2023): a warm-up in which the policy learns a task
# embedding by RL, then the VAE task decoder regresses it (stop-gradient); TI re-initialises
# the rest of the policy after the warm-up, TI++ keeps it. 100 warm-up updates as on their grid.
_TI = {**VARIBAD, "pass_task_to_policy": True, "policy_task_embedding_dim": 16, "policy_latent_embedding_dim": 16,
       "task_num_warmup": 100, "ti_coeff": 1.0, "ti_hard_reset": True}
METHODS.update({
    "ti": {**_TI, "exp_label": "ti"},
    "ti_pp": {**_TI, "ti_hard_reset": False, "exp_label": "ti_pp"},
    "ti_hn": {**_TI, **_HN, "exp_label": "ti_hn"},
    "ti_pp_hn": {**_TI, **_HN, "ti_hard_reset": False, "exp_label": "ti_pp_hn"},
    # BI++HN: the VAE regresses the base-network parameters the hypernetwork generates from the task embedding
    "bi_pp_hn": {**_TI, **_HN, "ti_hard_reset": False, "ti_target": "base_net", "exp_label": "bi_pp_hn"},
})
# Methods not built yet are listed here and refused with their message rather than silently ignored.
PLANNED_METHODS: dict[str, str] = {}
