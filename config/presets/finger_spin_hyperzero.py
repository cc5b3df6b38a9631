"""HyperZero on contextual finger-spin, dynamics contexts: distal lengths 0.12, 0.13, ..., 0.20 (our grid: the seed
README gives no finger sweep) at the default spin margin 15; approximators given the length (input dyn)."""
EXTENDS = "_hyperzero"
OVERRIDES = {
    "env_name": "ContextualFingerSpin", "hyperzero_input": "dyn", "hyperzero_margins": [15.0],
    "hyperzero_lengths": [round(0.12 + 0.01 * i, 2) for i in range(9)],
}
