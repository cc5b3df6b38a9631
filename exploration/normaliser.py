"""Running statistics and the return-based normaliser of exploration bonuses (HyperX).

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


class RunningMeanStd:
    """Running mean / variance over batches (parallel algorithm, population variance).

    Starts at mean 0, var 1 with a pseudo-count ``epsilon`` (as in baselines), so the first
    batch essentially replaces the initial values. ``update(x)`` treats dim 0 of ``x`` as the
    batch and the remaining dims as ``shape``.
    """

    def __init__(self, shape=(), epsilon: float = 1e-4, device="cpu"):
        self.mean = torch.zeros(shape, device=device)
        self.var = torch.ones(shape, device=device)
        self.count = torch.tensor(float(epsilon), device=device)

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.detach().reshape(-1, *self.mean.shape).to(self.mean)
        batch_mean = x.mean(0)
        batch_var = x.var(0, unbiased=False)
        n = x.shape[0]
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean = self.mean + delta * n / total
        m2 = self.var * self.count + batch_var * n + delta.pow(2) * self.count * n / total
        self.var = m2 / total
        self.count = total

    def state_dict(self) -> dict:
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": self.count.clone()}

    def load_state_dict(self, state: dict) -> None:
        device = self.mean.device
        self.mean = state["mean"].to(device)
        self.var = state["var"].to(device)
        self.count = torch.as_tensor(state["count"], dtype=torch.float32).to(device)


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
        self.rms = RunningMeanStd((), device=device)

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
