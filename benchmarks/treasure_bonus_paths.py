"""Does a trained HyperX agent's hyper-state RND find the mountain top novel? Two scripted
paths through the same fresh treasure-hunt tasks, encoded with the run's own VAE encoder:

    climb   straight up to the mountain top (the treasure is revealed), then to the treasure
    circle  along the unit circle until the treasure, as the agents that never climb do

and the mean raw hyper-state RND error (the bonus before normalisation) over steps 1-10,
11-25 and 26-60 of each.

    python benchmarks/treasure_bonus_paths.py RUN_DIR [RUN_DIR ...] [--tasks 64]
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from agent import load_run  # noqa: E402
from environments import make_env  # noqa: E402

WINDOWS = ((0, 10), (10, 25), (25, 60))


@torch.no_grad()
def path_bonus(run, bonus, path: str, num_tasks: int, seed: int) -> list[float]:
    """Mean raw hyper-state RND error over the windows of one scripted path (``run``: a
    ``agent.LoadedRun``, ``bonus``: its trained ``ExplorationBonus``)."""
    cfg, enc = run.cfg, run.agent.vae.encoder
    env = make_env(cfg.env_name, num_envs=num_tasks, seed=seed, **cfg.env_kwargs)
    obs = env.reset()
    post = enc.prior(num_tasks)
    seen = torch.zeros(num_tasks, dtype=torch.bool)
    out = []
    for _ in range(WINDOWS[-1][1]):
        pos, goal = env.pos.clone(), env.goal
        if path == "climb":
            seen |= obs[:, 2:].abs().sum(1) > 0  # the goal shows in the observation on the top
            target = torch.where(seen[:, None], goal, torch.zeros_like(goal))
        else:
            ang = torch.atan2(pos[:, 1], pos[:, 0]) + 0.1
            target = torch.stack([torch.cos(ang), torch.sin(ang)], 1)
            target = torch.where((pos - goal).norm(dim=1, keepdim=True) < 0.1, pos, target)
        action = ((target - pos) / 0.1).clamp(-1, 1)
        next_obs, reward, _, _, _ = env.step(action)
        post = enc.step(action, next_obs, reward[:, None], post.hidden, prev_state=obs)
        inputs = bonus._rnd_inputs(next_obs, torch.cat([post.mean, post.logvar], -1))["hyperstate"]
        out.append(bonus.rnds["hyperstate"].bonus(inputs))
        obs = next_obs
    b = torch.stack(out)
    return [b[lo:hi].mean().item() for lo, hi in WINDOWS]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", help="treasure_hunt_hyperx run directories")
    ap.add_argument("--tasks", type=int, default=64)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for run in args.runs:
        loaded = load_run(run)
        bonus = loaded.bonus()
        if bonus is None or "hyperstate" not in bonus.rnds:
            sys.exit(f"{run}: no hyper-state bonus in this run")
        climb, circle = (path_bonus(loaded, bonus, p, args.tasks, args.seed) for p in ("climb", "circle"))
        ratio = " ".join(f"{a / b:.2f}" for a, b in zip(climb, circle))
        print(f"{run}: climb/circle hyper-state RND error, steps 1-10 / 11-25 / 26-60: {ratio}", flush=True)


if __name__ == "__main__":
    main()
