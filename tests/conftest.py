import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
torch.set_num_threads(1)  # tiny nets: more threads only oversubscribe 2 cores


def tiny(**extra) -> dict:
    """CLI-style overrides that make any env-type train in about a second."""
    base = {"num_frames": 256, "num_processes": 4, "policy_num_steps": 32, "precollect_len": 0,
            "ppo_num_minibatch": 2, "vae_batch_num_trajs": 2, "size_vae_buffer": 50, "num_vae_updates": 1,
            "eval_interval": 1, "vis_interval": 1000, "log_interval": 1, "save_interval": 1000,
            "num_eval_envs": 2, "progress_bar": False, "encoder_gru_hidden_size": 16, "latent_dim": 3,
            "policy_layers": [16], "vae_subsample_elbos": None, "vae_subsample_decodes": None}
    base.update(extra)
    return base


@pytest.fixture
def tiny_cfg():
    from config.loader import resolve

    def make(env_type: str, **extra):
        return resolve(env_type, values=tiny(**extra))

    return make
