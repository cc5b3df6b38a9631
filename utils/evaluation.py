"""Evaluation: fresh tasks, deterministic actions, one BAMDP (R episodes) per copy.

Returns per episode k = 1..R, averaged over copies (= tasks). Rewards are the raw env
rewards; no training statistic is updated here.
"""
from __future__ import annotations

import numpy as np
import torch


def _latent(learner, post):
    return learner._latent_input(post.mean, post.logvar)


@torch.no_grad()
def run_bamdp(learner, num_envs: int, seed: int, record: bool = False) -> dict:
    """Roll the policy deterministically through one BAMDP per copy."""
    from metalearner import build_env, policy_inputs

    cfg, spec, vae = learner.cfg, learner.spec, learner.vae
    env = build_env(cfg, num_envs, seed, learner.device)
    obs = env.reset()
    rows = torch.arange(num_envs, device=env.device)
    R = cfg.max_rollouts_per_task
    out = {k: torch.zeros(num_envs, R, device=env.device) for k in ("return", "success", "sparse", "dense")}
    seen = {"success": False, "sparse_reward": False}
    active = torch.ones(num_envs, dtype=torch.bool, device=env.device)
    encoder = vae.acting_encoder if vae else None  # the encoder the policy acts with
    post = encoder.prior(num_envs) if vae else None
    trace = {k: [] for k in ("obs", "next_obs", "actions", "raw_actions", "rewards", "episode", "pos", "mean",
                             "logvar", "belief")}
    task = env.get_task()[0].cpu().numpy()
    for _ in range(spec.horizon):
        latent = _latent(learner, post) if vae else None
        inputs = policy_inputs(cfg, env, obs, latent)
        act = learner.policy.act(inputs, deterministic=True)
        if record:
            trace["obs"].append(obs[0].cpu().numpy())
            if vae:
                trace["mean"].append(post.mean[0].cpu().numpy())
                trace["logvar"].append(post.logvar[0].cpu().numpy())
            if env.belief_dim:
                trace["belief"].append(env.get_belief()[0].cpu().numpy())
        next_obs, reward, done, info = env.step(act.env_action)
        ep, live = info["episode"], active.float()
        out["return"][rows, ep] += reward * live
        if "success" in info:
            seen["success"] = True
            out["success"][rows, ep] = torch.maximum(out["success"][rows, ep], info["success"].float() * live)
        if "sparse_reward" in info:
            seen["sparse_reward"] = True
            out["sparse"][rows, ep] += info["sparse_reward"] * live
            out["dense"][rows, ep] += info["dense_reward"] * live
        if vae:
            enc_action = learner._encoder_action(act.action)
            post = encoder.step(enc_action, info["next_obs"], reward[:, None], post.hidden, done, prev_state=obs)
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
    if record:
        res["trace"] = {k: np.asarray(v) for k, v in trace.items() if len(v)}
        res["trace"]["task"] = task
    return res


def evaluate(learner, seed: int) -> dict:
    return run_bamdp(learner, learner.cfg.num_eval_envs, seed)


def single_rollout(learner, seed: int) -> dict:
    """One copy, recorded step by step, for the behaviour / latent plots."""
    return run_bamdp(learner, 1, seed, record=True)["trace"]
