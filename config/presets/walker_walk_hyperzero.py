"""HyperZero on contextual walker-walk, reward contexts: speed margins 0.5, 1.0, ..., 5.0 (our grid: the seed
README gives no walker sweep), default torso; TD3 batch 512 (HyperZero's walker setting)."""
EXTENDS = "_hyperzero"
OVERRIDES = {
    "env_name": "ContextualWalkerWalk", "hyperzero_input": "rew",
    "hyperzero_margins": [0.5 * i for i in range(1, 11)], "td3_batch_size": 512,
}
