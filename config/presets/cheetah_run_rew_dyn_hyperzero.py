"""HyperZero on contextual cheetah-run, reward x dynamics grid (HyperZero's README sweep): margins 1..5 x torso
half-lengths 0.3, 0.35, ..., 0.7 (45 contexts); approximators given both (input rew_dyn)."""
EXTENDS = "_hyperzero"
OVERRIDES = {
    "env_name": "ContextualCheetahRun", "hyperzero_input": "rew_dyn",
    "hyperzero_margins": [1.0, 2.0, 3.0, 4.0, 5.0],
    "hyperzero_lengths": [round(0.3 + 0.05 * i, 2) for i in range(9)],
}
