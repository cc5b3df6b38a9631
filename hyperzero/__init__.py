"""HyperZero (Rezaei-Shoshtari et al., AAAI 2023): zero-shot policies from MDP contexts.

    experts.py   K TD3 experts trained together (one per context) and their deterministic rollouts
    dataset.py   the rollout dataset on disk (npz + json) and the split by unique context
    evaluate.py  zero-shot evaluation of trained models against each held-out context's expert
The model and the baselines are in models/hyperzero.py, the pipeline in trainers/hyperzero.py.
"""
