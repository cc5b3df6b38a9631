"""HyperZero on contextual cheetah-run, reward contexts: speed margins 0.5, 1.0, ..., 10.0 (HyperZero's README
sweep, linear tolerance), default torso; approximators given the margin (input rew)."""
EXTENDS = "_hyperzero"
OVERRIDES = {
    "env_name": "ContextualCheetahRun", "hyperzero_input": "rew",
    "hyperzero_margins": [0.5 * i for i in range(1, 21)],
}
