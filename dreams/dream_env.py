"""The dream env: some copies of a real env are rewarded by a learned reward at a latent task.

``DreamEnv(inner, reward_fn, latent_dim, num_dream=k)`` wraps a batched ``MetaEnv`` (same spaces,
same copies). Copies flagged as dreams (the last ``k`` by default, as in ReId, or any
``dream_mask``) keep being simulated by the inner env, but their reward is
``reward_fn(z [n, d], prev_obs [n, o], action [n, a], next_obs [n, o]) -> r [n]`` at their
latent ``z`` instead of the real one (reward-only task families). With ``state_fn(z, prev_obs,
action) -> next_obs`` their transitions are dreamed too (dynamics families); the inner env then
only keeps time (its observations and terminations of dream copies are ignored).

A dream copy's "task" is its latent: ``set_dream_latents(mask, z)`` sets it, and with a sampler
(``set_sampler``: anything with ``sample(n) -> [n, d]``, or a callable ``n -> [n, d]``) every
``reset`` of a dream copy (a new BAMDP) draws a new one; ``reset_mdp`` keeps it.

With ``add_done_info`` the observations given to ``reward_fn``/``state_fn`` carry the BAMDP
wrapper's done flag (0 on ``prev_obs``, 1 on a ``next_obs`` that ends an MDP episode), so that
the VAE's decoders see inputs shaped and valued as in training.

``info["dream"]`` [N] bool marks the dream copies, ``info["real_reward"]`` [N] is the inner env's
reward of every copy; other inner info keys ("success", "sparse_reward", ...) stay those of the
real task, so mask them with ``info["dream"]``.
"""
from __future__ import annotations

from typing import Callable

import torch

from environments.base import MetaEnv
from environments.wrappers import MetaEnvWrapper

RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
StateFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class DreamEnv(MetaEnvWrapper):
    """A ``MetaEnv`` whose dream copies get ``reward_fn`` at their latent as reward."""

    def __init__(self, inner: MetaEnv, reward_fn: RewardFn, latent_dim: int, num_dream: int = 0,
                 dream_mask: torch.Tensor | None = None, state_fn: StateFn | None = None,
                 add_done_info: bool = False, sampler=None):
        super().__init__(inner)
        self.generator = inner.generator
        self.reward_fn, self.state_fn, self.add_done_info = reward_fn, state_fn, add_done_info
        self.latent_dim = int(latent_dim)
        if dream_mask is None:
            if not 0 <= num_dream <= self.num_envs:
                raise ValueError(f"num_dream must be in 0..{self.num_envs}, got {num_dream}")
            dream_mask = torch.arange(self.num_envs, device=self.device) >= self.num_envs - num_dream
        self.dream_mask = self._full_mask(dream_mask).clone()
        self.latents = torch.zeros(self.num_envs, self.latent_dim, device=self.device)
        self.sampler = sampler
        self.last_obs = inner._obs().clone()

    # ----- dreams ----------------------------------------------------------------------------------
    @property
    def dream_mask(self) -> torch.Tensor:
        """[N] bool: the copies that dream."""
        return self._dream_mask

    @dream_mask.setter
    def dream_mask(self, mask: torch.Tensor) -> None:
        self._dream_mask = mask
        self._any_dream = bool(mask.any())  # read once here, not in every step (no per-step host sync)

    @property
    def num_dream(self) -> int:
        return int(self.dream_mask.sum())

    def set_dream_mask(self, mask: torch.Tensor) -> None:
        """Which copies dream (e.g. none until ``delay_dream``). Newly flagged copies draw a latent
        from the sampler if one is set (else set it with ``set_dream_latents``); call this where
        those copies start a new BAMDP, right after the wrapper reset them."""
        mask = self._full_mask(mask).clone()
        new = mask & ~self.dream_mask
        self.dream_mask = mask
        if self.sampler is not None and bool(new.any()):
            self.latents[new] = self._draw(int(new.sum())).float().to(self.device).reshape(-1, self.latent_dim)

    def set_sampler(self, sampler) -> None:
        """Where new dream latents come from at ``reset`` (None: latents are only set by hand)."""
        self.sampler = sampler

    def set_dream_latents(self, mask: torch.Tensor, z: torch.Tensor) -> None:
        """Latents z [mask.sum(), d] of the dream copies in ``mask``."""
        mask = self._full_mask(mask)
        if (mask & ~self.dream_mask).any():
            raise ValueError("set_dream_latents: the mask includes copies that are not dream copies")
        z = torch.as_tensor(z, dtype=torch.float32).to(self.device).reshape(-1, self.latent_dim)
        if len(z) != int(mask.sum()):
            raise ValueError(f"set_dream_latents: {int(mask.sum())} copies in the mask but {len(z)} latents")
        self.latents[mask] = z

    def get_latents(self) -> torch.Tensor:
        """[N, d] latent of every copy (meaningful where ``dream_mask``)."""
        return self.latents.clone()

    def _draw(self, n: int) -> torch.Tensor:
        draw = self.sampler.sample if hasattr(self.sampler, "sample") else self.sampler
        return draw(n)

    # ----- contract ----------------------------------------------------------------------------------
    def sample_tasks(self, n: int) -> torch.Tensor:
        return self.inner.sample_tasks(n)

    def reset(self, mask: torch.Tensor | None = None, tasks: torch.Tensor | None = None) -> torch.Tensor:
        mask = self._full_mask(mask)
        obs = self.inner.reset(mask, tasks)
        new = mask & self.dream_mask
        if self.sampler is not None and bool(new.any()):
            self.latents[new] = self._draw(int(new.sum())).float().to(self.device).reshape(-1, self.latent_dim)
        return self._remember(obs, mask)

    def reset_mdp(self, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = self._full_mask(mask)
        return self._remember(self.inner.reset_mdp(mask), mask)

    def _remember(self, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.last_obs = torch.where(mask[:, None], obs, self.last_obs)
        return self.last_obs.clone()

    def _flag(self, obs: torch.Tensor, flag: torch.Tensor) -> torch.Tensor:
        return torch.cat([obs, flag.float()[:, None]], 1) if self.add_done_info else obs

    def step(self, actions: torch.Tensor):
        prev = self.last_obs
        obs, real_reward, terminated, truncated, info = self.inner.step(actions)
        reward, dream = real_reward, self.dream_mask
        if self._any_dream:
            acts = actions.reshape(self.num_envs, -1)[dream].float()
            z = self.latents[dream]
            obs, terminated = obs.clone(), terminated.clone()
            if self.state_fn is not None:
                zeros = torch.zeros(len(z), device=self.device)
                with torch.no_grad():
                    dreamed = self.state_fn(z, self._flag(prev[dream], zeros), acts)
                obs[dream] = dreamed[:, :obs.shape[1]].to(obs.dtype)
                terminated[dream] = False
            done = (terminated | truncated)[dream]
            with torch.no_grad():
                r = self.reward_fn(z, self._flag(prev[dream], torch.zeros_like(done)), acts, self._flag(obs[dream], done))
            reward = real_reward.clone()
            reward[dream] = r.reshape(-1).to(reward.dtype)
        info = dict(info)
        info.update(dream=dream.clone(), real_reward=real_reward)
        self.last_obs = obs.clone()
        return obs, reward, terminated, truncated, info

    def get_task(self) -> torch.Tensor:
        """The inner env's tasks (for dream copies: the unused real task; see ``get_latents``)."""
        return self.inner.get_task()

    def _obs(self) -> torch.Tensor:
        return self.last_obs.clone()

    def state_dict(self) -> dict:
        sampler = self.sampler.state_dict() if hasattr(self.sampler, "state_dict") else None
        return {"inner": self.inner.state_dict(), "latents": self.latents.clone(), "dream_mask": self.dream_mask.clone(),
                "last_obs": self.last_obs.clone(), "sampler": sampler}

    def load_state_dict(self, state: dict) -> None:
        """Restores everything; a sampler saved with its state is rebuilt (``dreams.samplers``),
        a plain callable sampler must be set again with ``set_sampler``."""
        self.inner.load_state_dict(state["inner"])
        self.latents = state["latents"].to(self.device).clone()
        self.dream_mask = state["dream_mask"].to(self.device).clone()
        self.last_obs = state["last_obs"].to(self.device).clone()
        if state.get("sampler") is not None:
            from dreams.samplers import load_sampler

            self.sampler = load_sampler(state["sampler"])
