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
