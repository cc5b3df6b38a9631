"""Running mean/std (parallel-variance update) as an nn.Module so it is checkpointed."""
from __future__ import annotations

import torch
from torch import nn


class RunningMeanStd(nn.Module):
    def __init__(self, shape=(), epsilon: float = 1e-4):
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("var", torch.ones(shape))
        self.register_buffer("count", torch.tensor(epsilon))
        self.register_buffer("inv_std", torch.ones(shape))  # cached 1/sqrt(var + 1e-8)

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, *self.mean.shape).float()
        batch_mean, batch_var, n = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        m2 = self.var * self.count + batch_var * n + delta.pow(2) * self.count * n / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)
        self.inv_std.copy_(torch.rsqrt(self.var + 1e-8))

    def normalise(self, x: torch.Tensor, clip: float | None = None) -> torch.Tensor:
        out = (x - self.mean) * self.inv_std
        return out.clamp(-clip, clip) if clip is not None else out


class RewardNormaliser(nn.Module):
    """Divide rewards by the running std of the discounted return (baselines' VecNormalize).

    Applied to a whole rollout at once (one statistics update per rollout instead of one
    per step: 60x fewer tiny ops; the scale then uses statistics that include the current
    rollout). Only the training loop calls it; evaluation uses raw rewards and never
    updates these statistics (the reference leaked eval rollouts into them). The return
    tracker is reset per copy at BAMDP ends only.
    """

    def __init__(self, num_envs: int, gamma: float, clip: float, device):
        super().__init__()
        self.gamma, self.clip = gamma, clip
        self.rms = RunningMeanStd(())
        self.register_buffer("ret", torch.zeros(num_envs, device=device))

    @torch.no_grad()
    def __call__(self, rewards: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
        """rewards, dones: [T, N] -> normalised rewards [T, N]."""
        rets = torch.empty_like(rewards)
        ret = self.ret
        for t in range(rewards.shape[0]):
            ret = ret * self.gamma + rewards[t]
            rets[t] = ret
            ret = ret * (~dones[t]).float()
        self.ret.copy_(ret)
        self.rms.update(rets)
        return (rewards / torch.sqrt(self.rms.var + 1e-8)).clamp(-self.clip, self.clip)
