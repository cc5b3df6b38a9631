"""Running mean/std (parallel-variance update) as an nn.Module so it is checkpointed."""
from __future__ import annotations

import numpy as np
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

    @torch.no_grad()
    def update_steps(self, x: torch.Tensor) -> None:
        """``update(x[t])`` for t = 0..T-1 in turn, for x [T, B, *shape], bit for bit: the
        batch moments of all T batches in two ops, then the scalar recurrence of the T
        parallel-variance merges in float32 numpy (the same IEEE float32 operations, in the
        same order, as the tensor code; ~100x less dispatch than T x 10 tensor ops)."""
        x = x.reshape(x.shape[0], -1, *self.mean.shape).float()
        if x.shape[0] == 0:
            return
        f32 = np.float32
        n = f32(x.shape[1])
        means, variances = x.mean(1).cpu().numpy(), x.var(1, unbiased=False).cpu().numpy()
        mean, var, count = (self.mean.cpu().numpy().copy(), self.var.cpu().numpy().copy(),
                            self.count.cpu().numpy().copy())
        for bm, bv in zip(means, variances):
            delta = bm - mean
            total = count + n
            mean = mean + delta * n / total
            m2 = var * count + bv * n + delta * delta * count * n / total
            var = (m2 / total).astype(f32)
            count = total
        dev = self.mean.device
        self.mean.copy_(torch.as_tensor(np.asarray(mean, dtype=f32), device=dev))
        self.var.copy_(torch.as_tensor(np.asarray(var, dtype=f32), device=dev))
        self.count.copy_(torch.as_tensor(np.asarray(count, dtype=f32), device=dev))
        self.inv_std.copy_(torch.rsqrt(self.var + 1e-8))

    def normalise(self, x: torch.Tensor, clip: float | None = None) -> torch.Tensor:
        out = (x - self.mean) * self.inv_std
        return out.clamp(-clip, clip) if clip is not None else out


class ReturnNormaliser(nn.Module):
    """Divides rewards by the running std of their discounted return (no mean subtraction;
    baselines' VecNormalize), optionally clipped. Used for the policy's rewards and, one per
    bonus, for HyperX's exploration bonuses.

    Indexing (rollouts of T steps, N copies): ``rewards[t, i]`` is the reward of transition t
    of copy i, ``dones[t, i]`` is True when copy i's BAMDP ended AFTER step t. The return
    ``ret_t = gamma * ret_{t-1} * (1 - done_{t-1}) + r_t`` is tracked per copy and carried
    across rollouts (reset at BAMDP ends only). The HyperX reference read done[t] from an array
    whose entry t is the done flag of step t-1, i.e. reset one step late; this does not.

    ``stats``: "per_rollout" updates the running statistics once with all T x N returns of a
    rollout (the policy's rewards: 60x fewer tiny ops; the scale then includes the current
    rollout), "per_step" once per step with the N returns of that step (HyperX's bonuses).
    Normalising uses the statistics after the update. Evaluation never calls this: it uses
    raw rewards (the reference leaked evaluation rollouts into these statistics).
    """

    def __init__(self, num_envs: int, gamma: float, clip: float | None = None, epsilon: float = 1e-8,
                 device="cpu", stats: str = "per_step"):
        super().__init__()
        if stats not in ("per_step", "per_rollout"):
            raise ValueError(f"stats must be per_step or per_rollout, got {stats!r}")
        self.gamma, self.clip, self.epsilon, self.stats = float(gamma), clip, epsilon, stats
        self.rms = RunningMeanStd(()).to(device)
        self.register_buffer("ret", torch.zeros(num_envs, device=device))

    @torch.no_grad()
    def update(self, rewards: torch.Tensor, dones: torch.Tensor) -> None:
        """Track the discounted return through a rollout ([T, N] each) and update the stats."""
        if rewards.shape != dones.shape or rewards.shape[1:] != self.ret.shape:
            raise ValueError(f"rewards {tuple(rewards.shape)} and dones {tuple(dones.shape)} must "
                             f"both be [T, {self.ret.shape[0]}]")
        # the return recurrence in float32 numpy: the same elementwise float32 operations as
        # tensor ops, without T x 3 dispatches (bit-identical)
        f32 = np.float32
        keep = (f32(1.0) - dones.detach().cpu().numpy().astype(f32))
        rew = rewards.detach().to(torch.float32).cpu().numpy()
        gamma = f32(self.gamma)
        rets = np.empty_like(rew)
        ret = self.ret.cpu().numpy().copy()
        for t in range(rew.shape[0]):  # loop over time, batched over copies
            ret = ret * gamma + rew[t]
            rets[t] = ret
            ret = ret * keep[t]
        self.ret.copy_(torch.from_numpy(ret))
        rets = torch.from_numpy(rets).to(self.ret.device)
        if self.stats == "per_rollout":
            self.rms.update(rets)
        else:  # one parallel-variance merge per step, batched (same numbers as T updates)
            self.rms.update_steps(rets)

    def normalise(self, rewards: torch.Tensor) -> torch.Tensor:
        """rewards / sqrt(var + eps), clipped if ``clip`` is set (no side effects)."""
        out = rewards / torch.sqrt(self.rms.var.to(rewards) + self.epsilon)
        return out.clamp(-self.clip, self.clip) if self.clip is not None else out

    def forward(self, rewards: torch.Tensor, dones: torch.Tensor, update: bool = True) -> torch.Tensor:
        """Update the statistics with the rollout (if ``update``), then normalise it."""
        if update:
            self.update(rewards, dones)
        return self.normalise(rewards)
