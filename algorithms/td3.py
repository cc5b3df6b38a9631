"""TD3 for K contexts at once: one actor and one pair of critics per context, trained in one process.

Every network has a leading *member* dimension K (``EnsembleLinear``: weight [K, in, out], one
``torch.baddbmm`` per layer), every context has its own replay buffer (``EnsembleReplay``:
[K, capacity, dim] tensors) and its own random streams, so member k of a K-member run is the
same computation as a 1-member run with member k's seed (tested; the batched matmul gives the
same numbers as K single ones up to float rounding). The losses of the members are summed, so
each member's gradients are those of its own loss; Adam is element-wise, so the shared
optimiser state is K independent ones.

Settings (HyperZero's TD3 experts, ``TD3Config`` defaults): actor and twin critics MLP 2 x 256 ReLU,
tanh actions in [-1, 1], orthogonal weight init and zero biases, Adam lr 1e-4, tau 0.01 (Polyak
target update), gamma 0.99, n-step 1, batch 256, replay 1M, 2000 uniform-random exploration
steps, Gaussian exploration std ``linear(1.0, 0.1, 100000)`` (per step), target-policy smoothing
noise with the same std clipped to +-0.3, actor and targets updated every 2nd critic update
(policy delay 2).
Choices where the description leaves it open: the actor loss is -min(Q1, Q2) at the actor's
deterministic action (DrQ-v2 style); noisy actions are clamped to [-1, 1].

Randomness per member k: ``seeds[k]`` seeds three ``torch.Generator``s (init, exploration noise,
replay sampling) via ``np.random.SeedSequence(seeds[k]).spawn(3)``.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TD3Config:
    hidden: int = 256
    lr: float = 1e-4
    tau: float = 0.01
    gamma: float = 0.99
    policy_delay: int = 2
    batch_size: int = 256
    buffer_size: int = 1_000_000
    num_expl_steps: int = 2000
    std_init: float = 1.0
    std_final: float = 0.1
    std_steps: int = 100_000
    stddev_clip: float = 0.3

    def std(self, step: int) -> float:
        """Exploration std at env step ``step``: linear from std_init to std_final over std_steps."""
        mix = min(max(step / self.std_steps, 0.0), 1.0)
        return (1.0 - mix) * self.std_init + mix * self.std_final


def member_generators(seeds: list[int]) -> list[list[torch.Generator]]:
    """Per member: [init, noise, sample] generators."""
    out = []
    for s in seeds:
        gens = []
        for child in np.random.SeedSequence(int(s)).spawn(3):
            g = torch.Generator()
            g.manual_seed(int(child.generate_state(1, dtype=np.uint64)[0] & ((1 << 63) - 1)))
            gens.append(g)
        out.append(gens)
    return out


class EnsembleLinear(nn.Module):
    """K independent linear layers: x [K, B, in] -> [K, B, out]."""

    def __init__(self, k: int, fan_in: int, fan_out: int, generators: list[torch.Generator]):
        super().__init__()
        weight = torch.empty(k, fan_out, fan_in)
        for i, g in enumerate(generators):
            nn.init.orthogonal_(weight[i], generator=g)
        self.weight = nn.Parameter(weight.transpose(1, 2).contiguous())
        self.bias = nn.Parameter(torch.zeros(k, 1, fan_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleMLP(nn.Module):
    """K MLPs ``sizes[0] -> ... -> sizes[-1]`` with ReLU between layers."""

    def __init__(self, k: int, sizes: list[int], generators: list[torch.Generator]):
        super().__init__()
        self.layers = nn.ModuleList(EnsembleLinear(k, a, b, generators) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class EnsembleReplay:
    """One FIFO replay buffer per member, stored as [K, capacity, dim] tensors. All members add
    one transition per call (the K contexts are stepped together)."""

    KEYS = ("obs", "action", "reward", "discount", "next_obs")

    def __init__(self, k: int, capacity: int, obs_dim: int, act_dim: int):
        self.k, self.capacity = k, int(capacity)
        dims = {"obs": obs_dim, "action": act_dim, "reward": 1, "discount": 1, "next_obs": obs_dim}
        self.data = {key: torch.zeros(k, self.capacity, d) for key, d in dims.items()}
        self.ptr, self.size = 0, 0

    def add(self, **batch: torch.Tensor) -> None:
        """Each value [K, dim] (or [K])."""
        for key in self.KEYS:
            self.data[key][:, self.ptr] = batch[key].reshape(self.k, -1).to(self.data[key])
        self.ptr = (self.ptr + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, generators: list[torch.Generator]) -> dict:
        """[K, B, dim] per key; member k draws its indices with its own generator."""
        idx = torch.stack([torch.randint(self.size, (batch_size,), generator=g) for g in generators])
        rows = torch.arange(self.k)[:, None]
        return {key: v[rows, idx] for key, v in self.data.items()}

    def state_dict(self) -> dict:
        return {"data": {k: v[:, :self.size].clone() for k, v in self.data.items()}, "ptr": self.ptr, "size": self.size}

    def load_state_dict(self, state: dict) -> None:
        self.ptr, self.size = int(state["ptr"]), int(state["size"])
        for k, v in state["data"].items():
            self.data[k][:, :self.size] = v


class TD3Ensemble:
    """K TD3 agents (one per context) updated together."""

    def __init__(self, k: int, obs_dim: int, act_dim: int, seeds: list[int], cfg: TD3Config | None = None,
                 device: str | torch.device = "cpu"):
        if len(seeds) != k:
            raise ValueError(f"need one seed per member: {k} members, {len(seeds)} seeds")
        self.k, self.obs_dim, self.act_dim = k, obs_dim, act_dim
        self.cfg = cfg or TD3Config()
        self.seeds = [int(s) for s in seeds]
        gens = member_generators(self.seeds)
        init = [g[0] for g in gens]
        self.noise_gens = [g[1] for g in gens]
        self.sample_gens = [g[2] for g in gens]
        h = self.cfg.hidden
        self.device = torch.device(device)
        self.actor = EnsembleMLP(k, [obs_dim, h, h, act_dim], init).to(self.device)
        self.q1 = EnsembleMLP(k, [obs_dim + act_dim, h, h, 1], init).to(self.device)
        self.q2 = EnsembleMLP(k, [obs_dim + act_dim, h, h, 1], init).to(self.device)
        self.actor_target = copy.deepcopy(self.actor)
        self.q1_target, self.q2_target = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=self.cfg.lr)
        self.critic_opt = torch.optim.Adam(list(self.q1.parameters()) + list(self.q2.parameters()), lr=self.cfg.lr)
        self.num_updates = 0

    # ----- acting ---------------------------------------------------------------------------
    def policy(self, obs: torch.Tensor, target: bool = False) -> torch.Tensor:
        """Deterministic actions: obs [K, B, obs_dim] -> [K, B, act_dim]."""
        return torch.tanh((self.actor_target if target else self.actor)(obs))

    def q_values(self, obs: torch.Tensor, action: torch.Tensor, target: bool = False):
        x = torch.cat([obs, action], -1)
        if target:
            return self.q1_target(x), self.q2_target(x)
        return self.q1(x), self.q2(x)

    def _member_randn(self, shape: tuple) -> torch.Tensor:
        return torch.stack([torch.randn(shape, generator=g) for g in self.noise_gens]).to(self.device)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, step: int, explore: bool = True) -> torch.Tensor:
        """obs [K, obs_dim] (one env copy per member) -> actions [K, act_dim]."""
        mu = self.policy(obs.to(self.device).unsqueeze(1)).squeeze(1)
        if not explore:
            return mu
        if step < self.cfg.num_expl_steps:
            return torch.stack([torch.rand(self.act_dim, generator=g) * 2 - 1 for g in self.noise_gens]).to(self.device)
        noise = self._member_randn((self.act_dim,)) * self.cfg.std(step)
        return (mu + noise).clamp(-1.0, 1.0)

    # ----- learning -------------------------------------------------------------------------
    def update(self, batch: dict, step: int) -> dict:
        """One critic update (and every ``policy_delay``-th an actor + target update) on
        ``batch`` {key: [K, B, dim]}. Returns mean statistics over members."""
        cfg = self.cfg
        obs, action, reward = batch["obs"].to(self.device), batch["action"].to(self.device), batch["reward"].to(self.device)
        discount, next_obs = batch["discount"].to(self.device), batch["next_obs"].to(self.device)
        with torch.no_grad():
            noise = (self._member_randn(action.shape[1:]) * cfg.std(step)).clamp(-cfg.stddev_clip, cfg.stddev_clip)
            next_action = (self.policy(next_obs, target=True) + noise).clamp(-1.0, 1.0)
            tq1, tq2 = self.q_values(next_obs, next_action, target=True)
            target = reward + discount * cfg.gamma * torch.min(tq1, tq2)
        q1, q2 = self.q_values(obs, action)
        critic_loss = ((q1 - target).pow(2).mean((1, 2)) + (q2 - target).pow(2).mean((1, 2))).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        self.num_updates += 1
        stats = {"critic_loss": critic_loss.item() / self.k, "q1": q1.mean().item(), "target_q": target.mean().item()}
        if self.num_updates % cfg.policy_delay == 0:
            pq1, pq2 = self.q_values(obs, self.policy(obs))
            actor_loss = (-torch.min(pq1, pq2).mean((1, 2))).sum()
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_opt.step()
            self._soft_update()
            stats["actor_loss"] = actor_loss.item() / self.k
        return stats

    @torch.no_grad()
    def _soft_update(self) -> None:
        tau = self.cfg.tau
        for net, tgt in ((self.actor, self.actor_target), (self.q1, self.q1_target), (self.q2, self.q2_target)):
            for p, tp in zip(net.parameters(), tgt.parameters()):
                tp.lerp_(p, tau)

    # ----- members / checkpoints ------------------------------------------------------------
    def member_state(self, k: int) -> dict:
        """The parameters of member k (for comparisons and exporting one expert)."""
        nets = {"actor": self.actor, "q1": self.q1, "q2": self.q2}
        return {f"{name}.{pn}": p.detach()[k].clone() for name, net in nets.items() for pn, p in net.named_parameters()}

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "q1": self.q1.state_dict(), "q2": self.q2.state_dict(),
                "actor_target": self.actor_target.state_dict(), "q1_target": self.q1_target.state_dict(),
                "q2_target": self.q2_target.state_dict(), "actor_opt": self.actor_opt.state_dict(),
                "critic_opt": self.critic_opt.state_dict(), "num_updates": self.num_updates,
                "noise_gens": [g.get_state() for g in self.noise_gens],
                "sample_gens": [g.get_state() for g in self.sample_gens], "cfg": asdict(self.cfg), "seeds": self.seeds}

    def load_state_dict(self, state: dict) -> None:
        for name in ("actor", "q1", "q2", "actor_target", "q1_target", "q2_target", "actor_opt", "critic_opt"):
            getattr(self, name).load_state_dict(state[name])
        self.num_updates = int(state["num_updates"])
        for g, s in zip(self.noise_gens, state["noise_gens"]):
            g.set_state(s)
        for g, s in zip(self.sample_gens, state["sample_gens"]):
            g.set_state(s)
