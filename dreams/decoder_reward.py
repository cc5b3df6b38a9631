"""The VAE's reward decoder as the dream env's reward function.

``reward_fn = decoder_reward_fn(snapshot(vae.reward_decoder), scale=...)`` gives
``reward_fn(z, prev_obs, action, next_obs) -> r [n]``, evaluated without gradients. The decoder
is called as in the VAE's ELBO: ``decoder(latent, next_obs, prev_obs, action)``. ``scale``
undoes ``--normalise_rew_targets`` (the decoder then predicts r / running max |r|): a number,
a tensor, or a callable giving either (e.g. ``lambda: vae.buffer.reward_absmax``).

``snapshot`` freezes a copy of a module (``--clone_dream_vae``, or a copy refreshed at fixed
points), so that the dream reward does not move with every VAE update.
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn


def snapshot(module: nn.Module) -> nn.Module:
    """A frozen copy: eval mode, no gradients."""
    frozen = copy.deepcopy(module).eval()
    for p in frozen.parameters():
        p.requires_grad_(False)
    return frozen


def decoder_reward_fn(decoder: nn.Module, scale: float | torch.Tensor | Callable | None = None) -> Callable:
    """Wrap a deterministic (regression) ``RewardDecoder`` as a dream reward function."""
    if getattr(decoder, "multihead", False):
        raise NotImplementedError("dream rewards from a multi-head (per-state Bernoulli) reward decoder are not "
                                  "supported: train a regression reward decoder (--multihead_for_reward false)")

    @torch.no_grad()
    def reward_fn(z: torch.Tensor, prev_obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        r = decoder(z, next_obs, prev_obs, action.float().reshape(len(z), -1)).reshape(-1)
        if scale is not None:
            r = r * (scale() if callable(scale) else scale)
        return r

    return reward_fn
