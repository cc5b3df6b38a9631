"""The BAMDP wrapper: R episodes of one task make one meta-episode (a BAMDP).

Written once over the batched contract (environments/base.py). Per copy:

- ``reset(mask, tasks)`` starts a new BAMDP: new task, episode counter 0.
- ``step(a)`` steps the inner env. Where an MDP episode ends (terminated or time limit)
  and fewer than R episodes were played, the copy is reset to a new episode of the SAME
  task inside this call. Where the R-th episode ends, the BAMDP is done and the copy starts
  a new BAMDP with a new task inside this call (same-step autoreset).
- The returned ``obs`` is what the policy acts on next: the start state of the new episode
  where one began. (The reference returned the terminal state and silently applied the
  next action from the hidden reset state, so episode starts 2..R were never observed.)
  The observation that ended the transition is ``info["next_obs"]`` (terminal where an
  episode ended); this is what the encoder and the VAE see as s_{t+1}.
- With R > 1 a done flag is appended to observations (VariBAD's ``add_done_info``):
  1 on the observation that ends an MDP episode, 0 elsewhere.

Time limits, decided explicitly (reference pitfall 4): an MDP episode that hits its time
limit *inside* a BAMDP is not a truncation of the meta-episode: returns bootstrap straight
through it, so reward in later episodes is credited to exploration in earlier ones.
``info["bamdp_truncated"]`` marks a BAMDP that ended because its last episode hit the time
limit; the trainer treats it as terminal unless ``use_proper_time_limits`` is set.
An MDP episode that *terminates* early (a fallen ant) ends that episode only; the BAMDP
goes on with the next episode of the same task.

info (all [N] tensors):
    next_obs         observation after the action, before any reset (+ done flag)
    done_mdp         an MDP episode ended on this step
    episode          index k (0..R-1) of the episode this transition belongs to
    bamdp_truncated  the BAMDP ended on this step by the time limit of its last episode
    task             task of this transition [N, task_dim] (before a BAMDP reset; None
                     unless record_task)
    next_belief      exact belief after the transition, before resets (if record_belief)
    + the inner env's info keys
"""
from __future__ import annotations

import torch

from environments.base import MetaEnv


class BAMDPWrapper:
    member_state = ("episode", "bamdp_step")  # per-copy state (environments/members.py)

    def __init__(self, env: MetaEnv, episodes_per_task: int, add_done_info: bool | None = None):
        if episodes_per_task < 1:
            raise ValueError(f"episodes_per_task must be >= 1, got {episodes_per_task}")
        self.env = env
        self.episodes_per_task = episodes_per_task
        self.add_done_info = episodes_per_task > 1 if add_done_info is None else add_done_info
        self.record_belief = False  # put the pre-reset belief in info["next_belief"] (HyperX oracle)
        self.record_task = True     # put the transition's task in info["task"] (task decoding)
        self.episode = torch.zeros(env.num_envs, dtype=torch.long, device=env.device)
        self.bamdp_step = torch.zeros(env.num_envs, dtype=torch.long, device=env.device)
        self.any_done = False  # whether the last step ended some BAMDP (a host bool: no second sync for callers)

    # forwarded attributes ------------------------------------------------------------------
    num_envs = property(lambda self: self.env.num_envs)
    device = property(lambda self: self.env.device)
    action_space = property(lambda self: self.env.action_space)
    task_dim = property(lambda self: self.env.task_dim)
    belief_dim = property(lambda self: self.env.belief_dim)
    num_tasks = property(lambda self: self.env.num_tasks)
    max_episode_steps = property(lambda self: self.env.max_episode_steps)
    is_discrete = property(lambda self: self.env.is_discrete)

    @property
    def obs_dim(self) -> int:
        return self.env.obs_dim + int(self.add_done_info)

    @property
    def horizon(self) -> int:
        """H+ = R * H: the longest possible BAMDP."""
        return self.episodes_per_task * self.env.max_episode_steps

    def get_task(self):
        return self.env.get_task()

    def get_belief(self):
        return self.env.get_belief()

    def task_to_id(self, tasks):
        return self.env.task_to_id(tasks)

    # BAMDP logic -----------------------------------------------------------------------------
    def _flag(self, obs: torch.Tensor, flag: torch.Tensor | None = None) -> torch.Tensor:
        if not self.add_done_info:
            return obs
        if flag is None:
            flag = torch.zeros(obs.shape[0], device=obs.device)
        return torch.cat([obs, flag.float()[:, None]], 1)

    def reset(self, mask: torch.Tensor | None = None, tasks: torch.Tensor | None = None) -> torch.Tensor:
        mask = self.env._full_mask(mask)
        self.episode[mask] = 0
        self.bamdp_step[mask] = 0
        return self._flag(self.env.reset(mask, tasks))

    def step(self, actions: torch.Tensor):
        if self.episodes_per_task == 1:
            return self._step_single(actions)
        task = self.env.get_task() if self.record_task else None
        obs, reward, terminated, truncated, info = self.env.step(actions)
        done_mdp = terminated | truncated
        last_episode = self.episode >= self.episodes_per_task - 1
        done_bamdp = done_mdp & last_episode
        info = dict(info)
        if self.record_belief:
            info["next_belief"] = self.env.get_belief()
        info.update(next_obs=self._flag(obs, done_mdp), done_mdp=done_mdp, episode=self.episode.clone(),
                    bamdp_truncated=done_bamdp & truncated & ~terminated, task=task)
        self.bamdp_step += 1
        new_episode = done_mdp & ~last_episode
        self.any_done = False
        if bool(done_mdp.any()):  # one sync per step only for envs with episode ends
            if bool(new_episode.any()):
                self.episode[new_episode] += 1
                obs = torch.where(new_episode[:, None], self.env.reset_mdp(new_episode), obs)
            if bool(done_bamdp.any()):
                self.any_done = True
                self.episode[done_bamdp] = 0
                self.bamdp_step[done_bamdp] = 0
                obs = torch.where(done_bamdp[:, None], self.env.reset(done_bamdp), obs)
        return self._flag(obs), reward, done_bamdp, info

    def _step_single(self, actions: torch.Tensor):
        """``step`` for R = 1, where every MDP episode end is a BAMDP end: the same results
        with half the tensor ops and one host sync instead of three. ``episode`` stays 0 (its
        entries are only ever assigned 0), so info["episode"] is that tensor itself, not a copy;
        done & truncated & ~terminated is truncated & ~terminated (exact boolean identity)."""
        env = self.env
        task = env.get_task() if self.record_task else None
        obs, reward, terminated, truncated, info = env.step(actions)
        done = terminated | truncated
        info = dict(info)
        if self.record_belief:
            info["next_belief"] = env.get_belief()
        info.update(next_obs=self._flag(obs, done), done_mdp=done, episode=self.episode,
                    bamdp_truncated=truncated & ~terminated, task=task)
        self.bamdp_step += 1
        self.any_done = bool(done.any())  # one sync per step
        if self.any_done:
            self.bamdp_step[done] = 0
            obs = torch.where(done[:, None], env.reset(done), obs)
        return self._flag(obs), reward, done, info

    def state_dict(self) -> dict:
        return {"env": self.env.state_dict(), "episode": self.episode.clone(), "bamdp_step": self.bamdp_step.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.env.load_state_dict(state["env"])
        self.episode.copy_(state["episode"])
        self.bamdp_step.copy_(state["bamdp_step"])


def build_env(cfg, num_envs: int, seed: int, device, task_set: str = "train") -> BAMDPWrapper:
    """The BAMDP of a run's config (``env_name``, ``env_kwargs``, ``max_rollouts_per_task``).
    With a finite task pool (``env_num_goals``) the env draws only the tasks of ``task_set``
    ("train" or "eval") of the pool, which the run's pool seed fixes."""
    from environments.registry import make_env

    from environments.task_pool import TaskPoolEnv, pool_size

    env = make_env(cfg.env_name, num_envs=num_envs, seed=seed, device=device, **cfg.env_kwargs)
    goals = pool_size(getattr(cfg, "env_num_goals", None), getattr(cfg, "env_num_train_goals", None),
                      getattr(cfg, "env_num_eval_goals", None))
    if goals is not None:
        pool_seed = cfg.env_pool_seed if cfg.env_pool_seed is not None else cfg.seed
        env = TaskPoolEnv(env, goals, cfg.env_num_train_goals, cfg.env_num_eval_goals, pool_seed=pool_seed, seed=seed)
        env.set_task_set(task_set)
    return BAMDPWrapper(env, cfg.max_rollouts_per_task)
