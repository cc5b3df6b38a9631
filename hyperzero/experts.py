"""Training K TD3 experts on K contexts at once, and rolling policies out on contexts.

``ExpertTraining`` steps one batched contextual env with K copies (copy k keeps context k for
its whole life) and a ``TD3Ensemble`` with K members; every ``step()`` is one env step of all
copies, K transitions into K replay buffers and (after ``seed_frames`` steps) one TD3 update of
all members (updates also wait until the buffers hold ``seed_frames`` transitions, which only
matters after a resume from a checkpoint without buffers). ``rollout`` runs any deterministic policy on given contexts and returns
per-context arrays in the dataset layout (``hyperzero.dataset``).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from algorithms.td3 import EnsembleReplay, TD3Config, TD3Ensemble
from environments.registry import make_env


def member_seeds(seed: int, k: int) -> list[int]:
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(int(seed)).spawn(k)]


def make_context_env(env_name: str, contexts: np.ndarray, seed: int, max_episode_steps: int, **env_kwargs):
    """A batched env with one copy per context row [margin, length], reset to those contexts."""
    contexts = np.asarray(contexts, dtype=np.float64).reshape(-1, 2)
    env = make_env(env_name, num_envs=len(contexts), seed=seed, max_episode_steps=max_episode_steps,
                   margins=sorted(set(contexts[:, 0].tolist())), lengths=sorted(set(contexts[:, 1].tolist())),
                   **env_kwargs)
    return env


class ExpertTraining:
    def __init__(self, env_name: str, contexts: np.ndarray, seed: int, cfg: TD3Config, seed_frames: int = 4000,
                 max_episode_steps: int = 1000, env_kwargs: dict | None = None, device="cpu"):
        self.contexts = np.asarray(contexts, dtype=np.float64).reshape(-1, 2)
        self.k = len(self.contexts)
        self.cfg, self.seed_frames = cfg, int(seed_frames)
        self.env = make_context_env(env_name, self.contexts, seed, max_episode_steps, **(env_kwargs or {}))
        self.obs = self.env.reset(tasks=torch.from_numpy(self.contexts.astype(np.float32)))
        self.agent = TD3Ensemble(self.k, self.env.obs_dim, self.env.nu, member_seeds(seed, self.k), cfg, device)
        self.buffer = EnsembleReplay(self.k, cfg.buffer_size, self.env.obs_dim, self.env.nu)
        self.steps = 0
        self.episode_return = torch.zeros(self.k)
        self.finished_returns: list[list[float]] = []

    def step(self) -> dict:
        """One env step of every copy (+ one update); returns the update's statistics (or {})."""
        action = self.agent.act(self.obs, self.steps, explore=True)
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        self.buffer.add(obs=self.obs, action=action, reward=reward, discount=(~terminated).float(), next_obs=next_obs)
        self.episode_return += reward
        done = terminated | truncated
        if done.any():
            if done.all():
                self.finished_returns.append(self.episode_return.tolist())
            self.episode_return[done] = 0.0
            next_obs = self.env.reset_mdp(done)
        self.obs = next_obs
        self.steps += 1
        if self.steps >= self.seed_frames and self.buffer.size >= min(self.seed_frames, self.buffer.capacity):
            return self.agent.update(self.buffer.sample(self.cfg.batch_size, self.agent.sample_gens), self.steps)
        return {}

    def state_dict(self, include_buffer: bool = True) -> dict:
        """Everything to continue exactly; without the replay buffers (``include_buffer=False``)
        a restored run refills them for ``seed_frames`` steps before updating again."""
        state = {"agent": self.agent.state_dict(), "env": self.env.state_dict(), "obs": self.obs.clone(),
                 "steps": self.steps, "episode_return": self.episode_return.clone(),
                 "finished_returns": self.finished_returns}
        if include_buffer:
            state["buffer"] = self.buffer.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.agent.load_state_dict(state["agent"])
        if "buffer" in state:
            self.buffer.load_state_dict(state["buffer"])
        self.env.load_state_dict(state["env"])
        self.obs = state["obs"].clone()
        self.steps = int(state["steps"])
        self.episode_return = state["episode_return"].clone()
        self.finished_returns = [list(r) for r in state["finished_returns"]]

    def policy(self) -> Callable:
        """Deterministic policy (obs [K, obs_dim], contexts) -> actions [K, act_dim]."""
        return lambda obs, contexts: self.agent.act(obs, self.steps, explore=False)

    def value(self) -> Callable:
        """(obs [K, obs], action [K, act]) -> Q1 [K, 1] of each member's critic."""
        def q1(obs, action):
            with torch.no_grad():
                return self.agent.q_values(obs.unsqueeze(1), action.unsqueeze(1))[0].squeeze(1)
        return q1


@torch.no_grad()
def rollout(env_name: str, contexts: np.ndarray, policy: Callable, episodes: int, seed: int, max_episode_steps: int,
            value: Callable | None = None, env_kwargs: dict | None = None) -> dict[str, np.ndarray]:
    """Deterministic episodes of ``policy(obs [K, obs], contexts [K, 2]) -> actions`` on one copy per
    context. Returns arrays [K, E, T, dim] for state, action, next_state, reward, discount (and
    value if ``value(obs, action) -> [K, 1]`` is given), plus "return" [K, E]. The env is seeded
    with ``seed``: two policies rolled out with the same seed start from the same states."""
    contexts = np.asarray(contexts, dtype=np.float64).reshape(-1, 2)
    env = make_context_env(env_name, contexts, seed, max_episode_steps, **(env_kwargs or {}))
    ctx = torch.from_numpy(contexts.astype(np.float32))
    keys = ("state", "action", "next_state", "reward", "discount") + (("value",) if value else ())
    out = {k: [] for k in keys}
    for _ in range(episodes):
        obs = env.reset(tasks=ctx)
        ep = {k: [] for k in keys}
        for _ in range(max_episode_steps):
            action = policy(obs, ctx).clamp(-1.0, 1.0)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            ep["state"].append(obs)
            ep["action"].append(action)
            ep["next_state"].append(next_obs)
            ep["reward"].append(reward[:, None])
            ep["discount"].append((~terminated).float()[:, None])
            if value:
                ep["value"].append(value(obs, action))
            obs = next_obs
            if (terminated | truncated).all():
                break
        for k in keys:
            out[k].append(torch.stack(ep[k], 1))  # [K, T, dim]
    arrays = {k: torch.stack(v, 1).numpy() for k, v in out.items()}  # [K, E, T, dim]
    arrays["return"] = arrays["reward"].sum((2, 3))
    env.close()
    return arrays
