


def rollout_xy(rollout: dict):
    """(positions [T, 2], episode index [T]) of a recorded rollout, for the 2-D plots."""
    import numpy as np

    pos = rollout.get("pos")
    pos = np.asarray(pos if pos is not None else rollout["obs"][1:, :2])
    episode = np.asarray(rollout.get("episode", np.zeros(len(pos), dtype=int))).reshape(-1)[: len(pos)]
    return pos, episode
