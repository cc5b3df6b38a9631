"""``--trainer maml``: MAML-TRPO and its exploration variants on the batched envs.

One meta-iteration samples ``maml_meta_batch`` (M) tasks and steps ONE batched env of
N = M * ``maml_fast_batch`` (F) copies, copy i holding task i // F (set with ``env.reset(tasks=...)``):

    train[0]  = episodes of the meta-policy theta
    train[k]  = episodes of theta_k, first-order adapted on train[0..k-1] (the learner redoes the
                adaptation second-order for the meta-gradient, as pytorch-maml-rl)
    valid     = episodes of the adapted policy
    (VIME)    bonus of train transitions under the dynamics prior phi, of valid transitions under the
              per-task phi'_m (one ELBO step on the train transitions of all inner steps; MIME takes one
              step per inner step, the same for one inner step); dynamics meta-update
              (``dyn_warmup_updates`` at the first iteration, then one)
    TRPO step on theta (+ MIME's eta step)

Evaluation: on the env's fixed ``test_tasks()`` (or ``num_eval_envs`` tasks drawn once with seed + 1),
F trajectories each, before and after each of ``maml_test_inner_steps`` first-order inner steps:
``returns`` / ``success`` are lists [pre, post_1, ...] (progress.csv columns return_episode_1 = pre-update,
return_episode_2 = after one step, ...).

Rewards the learner sees (MIME 2.2): extrinsic, standardised per task batch if
``maml_normalize_rewards``, plus ``reward_noise_std`` * N(0, 1) if ``add_noise``; with VIME (after
``pre_epochs`` iterations) mixed with the normalised bonus by eta.

Everything runs on the CPU (``--device`` is not used): the networks are tiny and the MuJoCo envs
step on the CPU. The cost of an iteration is dominated by TRPO's Fisher-vector products through
the second-order inner step (benchmarks/bench_maml.py).
"""
from __future__ import annotations

import copy
import math
import os

import torch

from algorithms.maml import EtaWeight, Episodes, GaussianMLPPolicy, MAMLTRPO, masked_normalise, settings_from_config
from environments import make_env
from trainers.base import Trainer


class MAMLTrainer(Trainer):
    # ------------------------------------------------------------------ build
    def build(self) -> None:
        cfg = self.cfg
        self.device = torch.device("cpu")  # see the module docstring; config.json records it
        self.M, self.F = cfg.maml_meta_batch, cfg.maml_fast_batch
        self.env = make_env(cfg.env_name, self.M * self.F, seed=cfg.seed, **cfg.env_kwargs)
        if self.env.is_discrete:
            raise ValueError(f"--trainer maml has a Gaussian policy: {cfg.env_name} has discrete actions")
        probe = make_env(cfg.env_name, 1, seed=cfg.seed + 1, **cfg.env_kwargs)
        tasks = probe.test_tasks() if hasattr(probe, "test_tasks") else probe.sample_tasks(cfg.num_eval_envs)
        probe.close()
        self.test_tasks = tasks.cpu().float()
        self.eval_env = make_env(cfg.env_name, len(self.test_tasks) * self.F, seed=cfg.seed + 1, **cfg.env_kwargs)
        self.horizon = self.env.max_episode_steps
        obs_dim, act_dim = self.env.obs_dim, int(self.env.action_space.shape[0])
        self.policy = GaussianMLPPolicy(obs_dim, act_dim, cfg.policy_layers, cfg.policy_activation_function,
                                        cfg.policy_init_std)
        self.eta = EtaWeight(cfg.eta_init, cfg.eta_floor, learnable=cfg.adapt_eta) if cfg.use_vime else None
        self.learner = MAMLTRPO(self.policy, settings_from_config(cfg), self.eta)
        self.dynamics = self.normaliser = None
        if cfg.use_vime:
            from exploration.vime import BonusNormaliser, VIMEDynamics
            from models.bnn import BayesianDynamics

            bnn = BayesianDynamics(obs_dim + act_dim, obs_dim, cfg.dyn_hidden, cfg.dyn_prior_sd, cfg.dyn_likelihood_sd,
                                   cfg.dyn_mc_samples, shared_eps=cfg.dyn_shared_eps)
            self.dynamics = VIMEDynamics(bnn, cfg.dyn_lr, cfg.dyn_meta_lr, cfg.maml_first_order, rule=cfg.info_gain_rule,
                                         method=cfg.info_gain_method, second_order_step=cfg.info_gain_second_order_step,
                                         clip=cfg.info_gain_clip, last_chunk_only=cfg.dyn_elbo_last_chunk,
                                         mime_optimiser=cfg.dyn_mime_optimiser)
            self.normaliser = BonusNormaliser(cfg.bonus_normalisation)
        self.test_steps = cfg.maml_num_inner_steps if cfg.maml_test_inner_steps is None else cfg.maml_test_inner_steps

    @property
    def frames_per_iteration(self) -> int:
        return self.M * self.F * self.horizon * (self.cfg.maml_num_inner_steps + 1)

    @property
    def num_iterations(self) -> int:
        return max(1, math.ceil(self.cfg.num_frames / self.frames_per_iteration))

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def collect(self, env, tasks: torch.Tensor, params: dict | None) -> Episodes:
        """F trajectories of each of the M tasks, in one batched env; ``params``: per-task adapted
        parameters (leading dim M) or None for the meta-policy."""
        m, f = tasks.shape[0], env.num_envs // tasks.shape[0]
        obs = env.reset(tasks=tasks.repeat_interleave(f, 0))
        alive = torch.ones(env.num_envs, dtype=torch.bool)
        keys = ("obs", "actions", "rewards", "mask", "next_obs", "success", "pos")
        buf: dict[str, list] = {k: [] for k in keys}
        for _ in range(env.max_episode_steps):
            o = obs.float().view(m, f, -1)
            mu, std = self.policy(o) if params is None else self.policy.dist_per_task(o, params)
            action = (mu + std * torch.randn_like(mu)).reshape(env.num_envs, -1)
            next_obs, reward, terminated, truncated, info = env.step(action)
            buf["obs"].append(o)
            buf["actions"].append(action.view(m, f, -1))
            buf["rewards"].append((reward.float() * alive).view(m, f))
            buf["mask"].append(alive.float().view(m, f))
            buf["next_obs"].append(next_obs.float().view(m, f, -1))
            buf["success"].append((info["success"].bool() & alive).view(m, f) if "success" in info
                                  else torch.zeros(m, f, dtype=torch.bool))
            if "pos" in info:
                buf["pos"].append(info["pos"].float().view(m, f, -1))
            alive = alive & ~terminated.cpu()
            obs = next_obs
            if not alive.any() or bool(truncated.all()):
                break
        stack = {k: torch.stack(v, 1) for k, v in buf.items() if v}
        rewards, mask = stack["rewards"], stack["mask"]
        return Episodes(obs=stack["obs"], actions=stack["actions"], rewards=rewards, mask=mask,
                        returns=rewards.sum(1).mean(-1), success=stack["success"].any(1).any(-1).float(),
                        next_obs=stack["next_obs"], pos=stack.get("pos"), extra={"raw_rewards": rewards})

    def process_rewards(self, eps: Episodes) -> Episodes:
        """Standardise / add noise to the extrinsic rewards (MIME 2.2 steps 3-4)."""
        rew = eps.rewards
        if self.cfg.maml_normalize_rewards:
            rew = masked_normalise(rew, eps.mask)
        if self.cfg.add_noise:
            rew = (rew + self.cfg.reward_noise_std * torch.randn_like(rew)) * eps.mask
        eps.rewards = rew
        return eps

    @staticmethod
    def transitions(eps: Episodes) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x = [s, a], y = s', weight) per task, flattened over (T, F): [M, T*F, ...]."""
        m = eps.num_tasks
        x = torch.cat([eps.obs, eps.actions], -1).reshape(m, -1, eps.obs.shape[-1] + eps.actions.shape[-1])
        return x, eps.next_obs.reshape(m, -1, eps.obs.shape[-1]), eps.mask.reshape(m, -1)

    def add_bonus(self, eps: Episodes, dyn_params: dict | None, batched: bool, normaliser) -> Episodes:
        """Information gain of every transition (un-normalised return logged), normalised into eps.bonus."""
        x, y, _ = self.transitions(eps)
        raw = self.dynamics.bonus(dyn_params, x, y, batched).reshape(eps.mask.shape) * eps.mask
        eps.bonus_returns = raw.sum(1).mean(-1)
        eps.bonus = normaliser(raw, eps.mask)
        return eps

    def bonus_active(self) -> bool:
        return self.dynamics is not None and self.iter >= self.cfg.pre_epochs

    def sample(self, env, tasks: torch.Tensor, steps: int, use_bonus: bool, normaliser) -> tuple[list[Episodes], Episodes]:
        """train[0..steps-1] (each after first-order adaptation on the previous ones) and the episodes
        of the policy adapted on all of them."""
        train: list[Episodes] = []
        params = None
        for _ in range(steps):
            eps = self.process_rewards(self.collect(env, tasks, params))
            if use_bonus:
                self.add_bonus(eps, None, False, normaliser)
            train.append(eps)
            params = self.learner.adapted_params(train, use_bonus)
        return train, self.process_rewards(self.collect(env, tasks, params))

    # ------------------------------------------------------------------ one meta-iteration
    def train_iteration(self) -> dict:
        cfg = self.cfg
        use_bonus = self.bonus_active()
        tasks = self.env.sample_tasks(self.M).cpu().float()
        train, valid = self.sample(self.env, tasks, cfg.maml_num_inner_steps, use_bonus, self.normaliser)
        self.frames += sum(e.mask.numel() for e in (*train, valid))  # env steps taken (N copies x steps)
        stats = {}
        for k, e in enumerate(train):
            stats[f"Train-{k}/Returns"], stats[f"Train-{k}/Success"] = float(e.returns.mean()), float(e.success.mean())
        stats["Valid/Returns"], stats["Valid/Success"] = float(valid.returns.mean()), float(valid.success.mean())
        dyn_stats = {}
        if self.dynamics is not None:
            trans = [self.transitions(e) for e in train]
            train_t = tuple(torch.cat([t[i] for t in trans], 1) for i in range(3))
            valid_t = self.transitions(valid)
            if use_bonus:
                adapted = {n: p.detach() for n, p in self.dynamics.adapt(*train_t, first_order=True).items()}
                self.add_bonus(valid, adapted, True, self.normaliser)
                stats["Train-0/IntrinsicReturns"] = float(train[0].bonus_returns.mean())
                stats["Valid/IntrinsicReturns"] = float(valid.bonus_returns.mean())
            updates = cfg.dyn_warmup_updates if self.iter == 0 else 1
            dyn_stats = self.dynamics.meta_update(train_t, valid_t, updates)
        update_eta = cfg.adapt_eta and use_bonus
        trpo_stats = self.learner.step(train, valid, use_bonus, update_eta)
        if self.eta is not None:
            stats["Eta"] = float(self.eta.value().detach())
        out = {"maml": stats, "trpo": trpo_stats}
        if dyn_stats:
            out["dynamics"] = dyn_stats
        return out

    # ------------------------------------------------------------------ evaluation
    def evaluate_rollouts(self) -> tuple[list[Episodes], Episodes]:
        normaliser = copy.deepcopy(self.normaliser)  # evaluation never changes training statistics
        train, post = self.sample(self.eval_env, self.test_tasks, self.test_steps, self.bonus_active(), normaliser)
        return train, post

    def evaluate(self) -> dict:
        train, post = self.evaluate_rollouts()
        eps = [*train, post] if self.test_steps > 0 else train[:1] or [post]
        res = {"returns": [float(e.returns.mean()) for e in eps], "success": [float(e.success.mean()) for e in eps]}
        return res

    def test_adaptation(self) -> list[dict]:
        """Test-time adaptation of the trained policy on the fixed test tasks: ``maml_test_inner_steps``
        first-order inner steps; return and success before and after each step (and eta). Writes
        ``test_result.csv`` and TensorBoard scalars ``test/return``, ``test/success`` (x = inner step).
        The run's checkpoint is not changed."""
        import csv

        res = self.evaluate()
        eta = float(self.eta.value().detach()) if self.eta is not None else None
        rows = [{"inner_step": k, "return": r, "success": s, **({"eta": eta} if eta is not None else {})}
                for k, (r, s) in enumerate(zip(res["returns"], res["success"]))]
        path = os.path.join(self.run_dir, "test_result.csv")
        with open(path + ".tmp", "w", newline="") as f:
            writer = csv.DictWriter(f, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        os.replace(path + ".tmp", path)
        for row in rows:
            self.reporter.add("test/return", row["return"], row["inner_step"])
            self.reporter.add("test/success", row["success"], row["inner_step"])
        self.reporter.close()
        return rows

    def visualise(self) -> None:
        if not hasattr(self.env, "plot_rollout"):
            return
        rng, env_state = torch.get_rng_state(), self.eval_env.state_dict()  # plots must not change the run
        try:
            train, post = self.evaluate_rollouts()
        finally:
            torch.set_rng_state(rng)
            self.eval_env.load_state_dict(env_state)
        folder = os.path.join(self.run_dir, "plots")
        os.makedirs(folder, exist_ok=True)
        for m in range(min(2, len(self.test_tasks))):
            eps = [*train, post] if self.test_steps > 0 else train[:1]
            rollout = _rollout_of(eps, m, self.test_tasks[m])
            self.eval_env.plot_rollout(rollout, os.path.join(folder, f"{self.iter}_task{m}_pre_post.png"))

    # ------------------------------------------------------------------ checkpoints
    def trainer_state(self) -> dict:
        state = {"policy": self.policy.state_dict(), "env": self.env.state_dict(), "eval_env": self.eval_env.state_dict(),
                 "test_tasks": self.test_tasks}
        if self.eta is not None:
            state["eta"] = self.eta.state_dict()
        if self.dynamics is not None:
            state["dynamics"] = self.dynamics.state_dict()
            state["normaliser"] = self.normaliser.state_dict()
        return state

    def load_trainer_state(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.env.load_state_dict(state["env"])
        self.eval_env.load_state_dict(state["eval_env"])
        self.test_tasks = state["test_tasks"]
        if self.eta is not None:
            self.eta.load_state_dict(state["eta"])
        if self.dynamics is not None:
            self.dynamics.load_state_dict(state["dynamics"])
            self.normaliser.load_state_dict(state["normaliser"])


def _rollout_of(eps: list[Episodes], m: int, task: torch.Tensor) -> dict:
    """The first trajectory of task m of every inner step, as one env ``plot_rollout`` dict in which
    episode 0 is pre-update and episode k the trajectory after k inner steps."""
    parts = {"obs": [], "actions": [], "rewards": [], "episode": [], "pos": []}
    for k, e in enumerate(eps):
        t = int(e.mask[m, :, 0].sum())
        parts["obs"].append(e.obs[m, :t, 0])
        parts["actions"].append(e.actions[m, :t, 0])
        parts["rewards"].append(e.extra["raw_rewards"][m, :t, 0])
        parts["episode"].append(torch.full((t,), k))
        if e.pos is not None:
            parts["pos"].append(e.pos[m, :t, 0])
    last = eps[-1]
    t_last = int(last.mask[m, :, 0].sum())
    obs = torch.cat(parts["obs"] + [last.next_obs[m, t_last - 1, 0][None]])
    out = {"obs": obs.numpy(), "actions": torch.cat(parts["actions"]).numpy(),
           "rewards": torch.cat(parts["rewards"]).numpy(), "episode": torch.cat(parts["episode"]).numpy(),
           "task": task.numpy()}
    if parts["pos"]:
        out["pos"] = torch.cat(parts["pos"]).numpy()
    return out

