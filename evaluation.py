"""Evaluation: fresh tasks, deterministic actions, one BAMDP (R episodes) per copy.

Returns per episode k = 1..R, averaged over copies (= tasks). Rewards are the raw env
rewards; no training statistic is updated here. Works on an ``agent.Agent`` and an env; no
trainer is involved.
"""
from __future__ import annotations

import numpy as np
import torch

from environments.bamdp import build_env


@torch.no_grad()
def run_bamdp(agent, env, record: bool = False, on_step=None, bonus=None, seed: int = 0) -> dict:
    """Roll the agent deterministically through one BAMDP per copy of ``env`` (a BAMDP
    wrapper, freshly reset here). ``on_step(info, episode, live)`` (optional) sees every
    step's info, episode index [N] and still-running mask [N]. ``bonus``: a HyperX
    ``ExplorationBonus`` whose per-episode returns along the way are reported (never added);
    ``seed`` seeds the latent samples of its VAE-error part (training's streams are not touched)."""
    cfg, spec, vae = agent.cfg, agent.spec, agent.vae
    num_envs = env.num_envs
    obs = env.reset()
    rows = torch.arange(num_envs, device=env.device)
    R = cfg.max_rollouts_per_task
    out = {k: torch.zeros(num_envs, R, device=env.device) for k in ("return", "success", "sparse", "dense")}
    seen = {"success": False, "sparse_reward": False}
    active = torch.ones(num_envs, dtype=torch.bool, device=env.device)
    belief = agent.initial_belief(num_envs)
    encode = agent.belief_updater(num_envs) if vae else None
    trace = {k: [] for k in ("obs", "next_obs", "actions", "raw_actions", "rewards", "episode", "pos", "mean",
                             "logvar", "belief")}
    task = env.get_task()[0].cpu().numpy()
    if bonus is not None:  # what the exploration bonus would pay along the way (never added)
        env.record_belief = not vae and bonus.uses_beliefs
        env.record_task = cfg.exploration_bonus_vae_error and cfg.decode_task
        steps = {k: [] for k in ("next_obs", "belief", "done", "prev_obs", "actions", "rewards", "task", "episode",
                                 "active")}
    for _ in range(spec.horizon):
        inputs = agent.inputs(env, obs, agent.latent(belief))
        act = agent.act(inputs, deterministic=True)
        if record:
            trace["obs"].append(obs[0].cpu().numpy())
            if vae:
                trace["mean"].append(belief.mean[0].cpu().numpy())
                trace["logvar"].append(belief.logvar[0].cpu().numpy())
            if env.belief_dim:
                trace["belief"].append(env.get_belief()[0].cpu().numpy())
        next_obs, reward, done, info = env.step(act.env_action)
        ep, live = info["episode"], active.float()
        if on_step is not None:
            on_step(info, ep, live)
        out["return"][rows, ep] += reward * live
        if "success" in info:
            seen["success"] = True
            out["success"][rows, ep] = torch.maximum(out["success"][rows, ep], info["success"].float() * live)
        if "sparse_reward" in info:
            seen["sparse_reward"] = True
            out["sparse"][rows, ep] += info["sparse_reward"] * live
            out["dense"][rows, ep] += info["dense_reward"] * live
        enc_action = agent.encoder_action(act.action)
        if vae:
            belief, post = encode(belief, enc_action, info["next_obs"], reward, obs, done)
            posterior = torch.cat([post.mean, post.logvar], -1)
        if bonus is not None:
            for key, val in (("next_obs", info["next_obs"]), ("done", done), ("prev_obs", obs), ("rewards", reward),
                             ("episode", ep), ("active", active.clone()),
                             ("belief", posterior if vae else info.get("next_belief")),
                             ("actions", enc_action), ("task", info.get("task"))):
                steps[key].append(val)
        if record:
            trace["actions"].append(act.env_action[0].cpu().numpy())
            trace["raw_actions"].append(act.action[0].cpu().numpy())
            trace["next_obs"].append(info["next_obs"][0].cpu().numpy())
            trace["rewards"].append(float(reward[0]))
            trace["episode"].append(int(ep[0]))
            if "pos" in info:
                trace["pos"].append(info["pos"][0].cpu().numpy())
        active &= ~done
        obs = next_obs
        if not bool(active.any()):
            break
    res = {"returns": out["return"].mean(0).tolist(), "returns_std": out["return"].std(0, unbiased=False).tolist()}
    if seen["success"]:
        res["success"] = out["success"].mean(0).tolist()
    if seen["sparse_reward"]:
        res["sparse_return"] = out["sparse"].mean(0).tolist()
        res["dense_return"] = out["dense"].mean(0).tolist()
    bonus_steps = None
    if bonus is not None and not bonus.has_statistics():
        bonus = None  # before the first training rollout the normalisers know no scale: nothing meaningful to report
    if bonus is not None:
        steps = {k: v for k, v in steps.items() if v and v[0] is not None}
        res.update(_bonus_returns(agent, bonus, steps, num_envs, R, seed))
        bonus_steps = res.pop("bonus_steps")
    if record:
        res["trace"] = {k: np.asarray(v) for k, v in trace.items() if len(v)}
        res["trace"]["task"] = task
        if bonus_steps is not None:
            res["trace"]["bonus"] = bonus_steps[:, 0]
    return res


def _bonus_returns(agent, bonus, steps: dict, num_envs: int, R: int, seed: int) -> dict:
    """Per-episode sums of the bonuses along the evaluation BAMDP, with training's statistics
    (not updated here): ``return_bonus`` is what training would add now (annealed),
    ``return_bonus_<name>`` each normalised, weighted bonus before annealing."""
    from components.hyperx import vae_error_fn

    st = {k: torch.stack(v) for k, v in steps.items()}
    vae_error = None
    if agent.cfg.exploration_bonus_vae_error:
        # the decoders may be training on the overlapped VAE thread: wait for that update (a fixed
        # point), and draw the latent samples from an evaluation generator, not training's stream
        agent.vae.wait()
        gen = torch.Generator(device=agent.device).manual_seed(seed)
        vae_error = vae_error_fn(agent.vae, st["belief"], st["prev_obs"], st["actions"], st["next_obs"], st["rewards"],
                                 st.get("task"), generator=gen)
    total, _, parts = bonus.compute(st["next_obs"], st.get("belief"), st["done"], vae_error=vae_error,
                                    update_stats=False, return_parts=True)
    live = st["active"].float()
    out = {}
    for name, values in [("", total)] + [(f"_{k}", v) for k, v in parts.items()]:
        sums = torch.zeros(num_envs, R, device=values.device)
        sums.scatter_add_(1, st["episode"].t(), (values * live).t())
        out[f"return_bonus{name}"] = sums.mean(0).tolist()
    out["bonus_steps"] = (sum(parts.values()) * live).cpu().numpy()  # for plots: before annealing
    return out


def evaluate(agent, seed: int, num_envs: int | None = None, bonus=None, on_step=None, task_set: str = "train") -> dict:
    """Returns (and success, bonus returns, ...) per BAMDP episode over ``num_envs`` fresh tasks
    (with a finite task pool: tasks of its ``task_set``)."""
    env = build_env(agent.cfg, num_envs or agent.cfg.num_eval_envs, seed, agent.device, task_set=task_set)
    return run_bamdp(agent, env, on_step=on_step, bonus=bonus, seed=seed)


def evaluate_task_sets(agent, seed: int, bonus=None) -> dict:
    """Without a finite task pool: ``evaluate``. With one (ReId): the training tasks and, if
    there are any, the held-out ones, each under ``res["sets"][name]``; the top-level metrics
    are the held-out set's (the training set's if none is held out)."""
    cfg = agent.cfg
    from environments.task_pool import pool_size

    if pool_size(getattr(cfg, "env_num_goals", None), getattr(cfg, "env_num_train_goals", None),
                 getattr(cfg, "env_num_eval_goals", None)) is None:
        return evaluate(agent, seed, bonus=bonus)
    sets = {"train": evaluate(agent, seed, bonus=bonus, task_set="train")}
    if cfg.env_num_eval_goals:
        sets["eval"] = evaluate(agent, seed, bonus=bonus, task_set="eval")
    return {**sets.get("eval", sets["train"]), "sets": sets}


def single_rollout(agent, seed: int, bonus=None) -> dict:
    """One copy, recorded step by step, for the behaviour / latent plots."""
    return run_bamdp(agent, build_env(agent.cfg, 1, seed, agent.device), record=True, bonus=bonus, seed=seed)["trace"]
