"""Return-based normaliser of exploration bonuses (HyperX).

Each bonus is divided by the running std of its own *discounted return*, so that bonuses of
very different scales contribute comparably and the scale matches what the critic sees.

Indexing convention (rollouts of T steps and N env copies):
    bonus[t, i]  the bonus for transition t of copy i (i.e. for the hyper-state s+_{t+1})
    done[t, i]   True when the BAMDP of copy i ended AFTER step t (its last transition is t)

The return tracker runs, for t = 0..T-1:
    ret  = gamma * ret + bonus[t]         (ret was already zeroed if the BAMDP ended at t-1)
    rms.update(ret)                        (one batch of N values per step)
    ret[done[t]] = 0                       (the next step starts a new BAMDP)
which equals ret_t = gamma * ret_{t-1} * (1 - done[t-1]) + bonus[t], with done[-1] taken from
the previous rollout through the carried ``ret``. The reference read done[t] from a [T+1]
array whose entry t is the done flag of step t-1, so it reset one step late (the first
return of a new BAMDP still held the discounted tail of the previous one).
After the whole rollout has been tracked, every bonus is divided by sqrt(var + 1e-8) of the
*updated* statistics (no mean subtraction), then optionally clipped to [-clip, clip].
"""
from __future__ import annotations

import torch

from utils.running_stats import RunningMeanStd


class ReturnNormaliser:
    """Divides a [T, N] reward tensor by the running std of its discounted return.

    Args:
        num_envs: N, the number of env copies (the return is tracked per copy and carried
            across rollouts).
        gamma: discount of the tracked return (the policy's gamma).
        clip: if given, normalised values are clipped to [-clip, clip].
        epsilon: added to the variance before the square root.
    """

    def __init__(self, num_envs: int, gamma: float, clip: float | None = None,
                 epsilon: float = 1e-8, device="cpu"):
        self.gamma, self.clip, self.epsilon = float(gamma), clip, epsilon
        self.ret = torch.zeros(num_envs, device=device)
        self.rms = RunningMeanStd(()).to(device)

    @torch.no_grad()
    def update(self, rewards: torch.Tensor, dones: torch.Tensor) -> None:
        """Track the discounted return through a rollout ([T, N] each) and update the stats."""
        if rewards.shape != dones.shape or rewards.shape[1:] != self.ret.shape:
            raise ValueError(f"rewards {tuple(rewards.shape)} and dones {tuple(dones.shape)} must "
                             f"both be [T, {self.ret.shape[0]}]")
        keep = 1.0 - dones.to(self.ret).float()
        rewards = rewards.to(self.ret)
        ret = self.ret
        for t in range(rewards.shape[0]):  # loop over time, batched over copies
            ret = self.gamma * ret + rewards[t]
            self.rms.update(ret)
            ret = ret * keep[t]
        self.ret = ret

    def normalise(self, rewards: torch.Tensor) -> torch.Tensor:
        """rewards / sqrt(var + eps), clipped if ``clip`` is set (no side effects)."""
        out = rewards / torch.sqrt(self.rms.var.to(rewards) + self.epsilon)
        if self.clip is not None:
            out = out.clamp(-self.clip, self.clip)
        return out

    def __call__(self, rewards: torch.Tensor, dones: torch.Tensor, update: bool = True) -> torch.Tensor:
        """Update the statistics with the rollout (if ``update``), then normalise it."""
        if update:
            self.update(rewards, dones)
        return self.normalise(rewards)

    def state_dict(self) -> dict:
        return {"ret": self.ret.clone(), "rms": self.rms.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.ret = state["ret"].to(self.ret.device)
        self.rms.load_state_dict(state["rms"])
