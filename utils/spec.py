"""Values derived from the env and the config, kept apart from the config (never written back)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunSpec:
    obs_dim: int          # policy/encoder observation size (incl. the BAMDP done flag)
    action_dim: int       # 1 for discrete actions (stored as an index)
    num_actions: int      # number of discrete actions, or the Box dimension
    discrete: bool
    task_dim: int
    belief_dim: int
    num_tasks: int | None
    episode_len: int      # H
    horizon: int          # H+ = R * H
    num_updates: int      # policy updates of the whole run

    @classmethod
    def from_env(cls, env, cfg) -> "RunSpec":
        discrete = env.is_discrete
        num_actions = int(env.action_space.n) if discrete else int(env.action_space.shape[0])
        return cls(obs_dim=env.obs_dim, action_dim=1 if discrete else num_actions, num_actions=num_actions,
                   discrete=discrete, task_dim=env.task_dim, belief_dim=env.belief_dim,
                   num_tasks=env.num_tasks, episode_len=env.max_episode_steps, horizon=env.horizon,
                   num_updates=max(1, cfg.num_frames // cfg.policy_num_steps // cfg.num_processes))
