"""On-policy rollout storage (T steps x N copies) and GAE.

Index conventions (T = policy_num_steps):
    obs[t], latent[t], hidden[t], belief[t], task[t]   policy inputs at step t, t = 0..T
    actions[t], log_probs[t], rewards[t]               step t, t = 0..T-1
    next_obs[t]                                        observation after step t, before resets
    dones[t]                                           the BAMDP ended with step t
    truncs[t]                                          ...and it ended by its time limit
    values[t]                                          V at step t, t = 0..T (T: bootstrap)
Entry 0 of a rollout is set by ``set_first`` from the current (re-encoded) inputs.
"""
from __future__ import annotations

import numpy as np
import torch


def compute_gae(rewards, values, dones, truncs, gamma: float, lam: float, use_gae: bool = True,
                proper_time_limits: bool = False) -> torch.Tensor:
    """Returns [T, N] for rewards/dones/truncs [T, N] and values [T+1, N].

    A done step does not bootstrap from values[t+1] (that value belongs to the next task).
    With ``proper_time_limits`` a time-limit end is treated as a truncation instead: its
    return is the value of the step, i.e. the step's advantage is zero, as in VariBAD's
    ``gae * bad_mask``. Without GAE, Monte-Carlo-style discounted returns are used.
    """
    if rewards.device.type == "cpu":
        return torch.from_numpy(_gae_numpy(rewards, values, dones, truncs, gamma, lam, use_gae, proper_time_limits))
    return _returns(rewards, values, (~dones).float(), truncs, (~truncs).float(), gamma, gamma * lam, use_gae,
                    proper_time_limits, torch)


def _gae_numpy(rewards, values, dones, truncs, gamma, lam, use_gae, proper_time_limits):
    """``compute_gae`` on CPU: the same float32 operations in the same order, as numpy
    arrays (a rollout's T x ~6 tiny tensor ops cost more in dispatch than in arithmetic)."""
    f32 = np.float32
    r, v = rewards.detach().numpy().astype(f32, copy=False), values.detach().numpy().astype(f32, copy=False)
    return _returns(r, v, (~dones).numpy().astype(f32), truncs.numpy(), (~truncs).numpy().astype(f32), f32(gamma),
                    f32(gamma * lam), use_gae, proper_time_limits, np)


def _returns(r, v, not_done, trunc, not_trunc, g, gl, use_gae: bool, proper_time_limits: bool, xp):
    """The backward recursion of ``compute_gae`` on torch tensors or numpy arrays (``xp``: the
    module); ``g`` = gamma, ``gl`` = gamma * lam."""
    T = r.shape[0]
    returns = xp.empty_like(r)
    if use_gae:
        gae = xp.zeros_like(r[0])
        for t in reversed(range(T)):
            delta = r[t] + g * v[t + 1] * not_done[t] - v[t]
            gae = delta + gl * not_done[t] * gae
            if proper_time_limits:
                gae = gae * not_trunc[t]
            returns[t] = gae + v[t]
    else:
        ret = v[T]
        for t in reversed(range(T)):
            ret = r[t] + g * ret * not_done[t]
            if proper_time_limits:
                ret = xp.where(trunc[t], v[t], ret)
            returns[t] = ret
    return returns


class RolloutStorage:
    def __init__(self, num_steps: int, num_envs: int, dims: dict[str, int], action_shape: tuple,
                 discrete: bool, hidden_size: int, device, extra_dims: dict[str, int] | None = None):
        """extra_dims: per-step tensors [T, N, d] some options need (e.g. the posterior
        after each transition for exploration bonuses)."""
        T, N = num_steps, num_envs
        self.num_steps, self.num_envs = T, N
        z = dict(device=device)
        self.inputs = {k: torch.zeros(T + 1, N, d, **z) for k, d in dims.items() if d}
        self.hidden = torch.zeros(T + 1, N, hidden_size, **z)
        self.next_obs = torch.zeros(T, N, dims["state"], **z)
        self.actions = torch.zeros(T, N, *action_shape, dtype=torch.long if discrete else torch.float32, **z)
        self.log_probs = torch.zeros(T, N, **z)
        self.rewards_raw = torch.zeros(T, N, **z)
        self.rewards = torch.zeros(T, N, **z)   # normalised (what PPO sees, bonuses added)
        self.values = torch.zeros(T + 1, N, **z)
        self.returns = torch.zeros(T, N, **z)
        self.dones = torch.zeros(T, N, dtype=torch.bool, **z)
        self.truncs = torch.zeros(T, N, dtype=torch.bool, **z)
        self.extras = {k: torch.zeros(T, N, d, **z) for k, d in (extra_dims or {}).items() if d}
        self.step = 0
        # per-step destination views, made once (the per-step path then does copies only;
        # the tensors above are filled in place, never reassigned)
        self._dst: list | None = None

    def _step_views(self) -> list:
        T = self.num_steps
        self._dst = [{"inputs": {k: v[t + 1] for k, v in self.inputs.items()}, "hidden": self.hidden[t + 1],
                      "extras": {k: v[t] for k, v in self.extras.items()},
                      "fixed": (self.next_obs[t], self.rewards_raw[t], self.rewards[t], self.dones[t], self.truncs[t]),
                      "action": self.actions[t]} for t in range(T)]
        return self._dst

    def set_first(self, inputs: dict[str, torch.Tensor], hidden: torch.Tensor | None) -> None:
        """Start a rollout from the current policy inputs (and encoder hidden state)."""
        self.step = 0
        for k, v in inputs.items():
            if k in self.inputs:
                self.inputs[k][0].copy_(v)
        if hidden is not None:
            self.hidden[0].copy_(hidden)

    def insert(self, *, inputs, hidden, next_obs, action, reward_raw, reward, done, trunc, extras=None):
        dst = (self._dst or self._step_views())[self.step]
        if extras:
            ex = dst["extras"]
            for k, v in extras.items():
                ex[k].copy_(v)
        ins = dst["inputs"]
        for k, v in inputs.items():
            if k in ins:
                ins[k].copy_(v)
        if hidden is not None:
            dst["hidden"].copy_(hidden)
        for d, v in zip(dst["fixed"], (next_obs, reward_raw, reward, done, trunc)):
            d.copy_(v)
        a = dst["action"]
        a.copy_(action.reshape(a.shape))
        self.step += 1

    @torch.no_grad()
    def evaluate_policy(self, policy) -> None:
        """Values V(s_t) for t = 0..T and the log-probs of the taken actions, in one batch
        after the rollout (the policy did not change during it)."""
        T, N = self.num_steps, self.num_envs
        inputs = {k: v.reshape((T + 1) * N, -1) for k, v in self.inputs.items()}
        actor_out, values = policy(inputs)
        self.values.copy_(values.reshape(T + 1, N))
        actions = self.actions.reshape(T * N, *self.actions.shape[2:])
        self.log_probs.copy_(policy.log_prob(actor_out[:T * N], actions).reshape(T, N))
