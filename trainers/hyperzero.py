"""``--trainer hyperzero``: HyperZero's pipeline as one trainer with stages.

    experts    K TD3 experts, one per context of the grid hyperzero_margins x hyperzero_lengths,
               trained together (``hyperzero.experts.ExpertTraining``); num_frames env steps per
               context, hyperzero_steps_per_iteration per iteration. Saves <run>/experts/experts.pt.
    dataset    hyperzero_rollout_episodes deterministic episodes of every expert (seed + 1), with
               the critic's Q1(s, a) as value -> <run>/dataset (``hyperzero.dataset`` format).
    regressor  split the dataset by unique context (hyperzero_test_fraction, seeded with --seed,
               written next to the data); train every approximator of hyperzero_approximators, one
               epoch per iteration (Adam, batch hyperzero_batch_size), validation losses on the
               held-out contexts each epoch. Saves <run>/models/<name>.pt (last + best valid total).
               With --hyperzero_regressor_seeds S1 S2 ... every approximator is trained once per seed
               (its init seed + its own minibatch-order generator; same dataset and split):
               <run>/models/<name>_seed<S>.pt.
    evaluate   zero-shot rollouts of each approximator on the held-out contexts against their
               experts (``hyperzero.evaluate``) -> <run>/eval/zero_shot.{csv,json}, eval/report.md
               (experts' returns, mean zero-shot return and ratio per approximator, with the mean and
               spread over the regressor seeds), plots/zero_shot.png.

``--hyperzero_stage all`` runs the four in one run dir; a single stage reads its inputs from
--hyperzero_experts_run / --hyperzero_dataset_dir / --hyperzero_models_run. Every stage has the
base trainer's run dir, config.json, TensorBoard / progress.csv, checkpoints and --resume (a
resumed run continues exactly: the experts' replay buffers, envs and RNG streams and the
regressors' optimisers and shuffling generator are in the checkpoint). At full scale the buffers
are large (20 contexts x 1.1M cheetah transitions ~ 3.7 GB, float32); with
--hyperzero_checkpoint_buffers false they are left out and a resumed run refills them for
td3_seed_frames steps (not an exact continuation).

Examples::

    python main.py --env-type cheetah_run_hyperzero                      # everything, one run dir
    python main.py --env-type cheetah_run_hyperzero_small                # ~45 min on 2 CPU cores, 3 regressor seeds
    python main.py --env-type cheetah_run_hyperzero --hyperzero_stage experts
    python main.py --env-type cheetah_run_hyperzero --hyperzero_stage dataset --hyperzero_experts_run RUN
    python main.py --env-type cheetah_run_hyperzero --hyperzero_stage regressor --hyperzero_dataset_dir RUN/dataset \
        --hyperzero_input rew --hyperzero_approximators hyperzero,mlp_policy
    python main.py --env-type cheetah_run_hyperzero --hyperzero_stage evaluate --hyperzero_dataset_dir RUN/dataset \
        --hyperzero_models_run RUN2 --hyperzero_approximators hyperzero,mlp_policy
    python main.py --resume RUN

Evaluations (iteration 0 and every eval_interval): during the experts stage one deterministic
episode per context ("returns" = mean over contexts); during the regressor stage the validation
losses; after the evaluate stage the zero-shot summary (mean return and mean ratio to the expert).
"""
from __future__ import annotations

import copy
import math
import os

import numpy as np
import torch

from algorithms.td3 import TD3Config, TD3Ensemble
from config.options_hyperzero import approximator_names, regressor_labels, regressor_seeds
from hyperzero import dataset as ds
from hyperzero import evaluate as zs
from hyperzero.experts import ExpertTraining, member_seeds, rollout
from models.hyperzero import build_approximator, losses
from trainers.base import Trainer

ORDER = ("experts", "dataset", "regressor", "evaluate")


def td3_config(cfg) -> TD3Config:
    return TD3Config(hidden=cfg.td3_hidden, lr=cfg.td3_lr, tau=cfg.td3_tau, gamma=cfg.td3_gamma,
                     policy_delay=cfg.td3_policy_delay, batch_size=cfg.td3_batch_size, buffer_size=cfg.td3_buffer_size,
                     num_expl_steps=cfg.td3_expl_steps, std_init=cfg.td3_std_init, std_final=cfg.td3_std_final,
                     std_steps=cfg.td3_std_steps, stddev_clip=cfg.td3_stddev_clip)


def context_grid(cfg) -> np.ndarray:
    """[K, 2] (margin, length) rows: every margin x every length."""
    from environments.contextual.models import DEFAULT_LENGTH
    from environments.registry import ENVS

    lengths = cfg.hyperzero_lengths or [DEFAULT_LENGTH[ENVS.get(cfg.env_name).domain]]
    return np.array([(m, L) for m in cfg.hyperzero_margins for L in lengths], dtype=np.float64)


class HyperZeroTrainer(Trainer):
    # ------------------------------------------------------------------ build
    def build(self) -> None:
        cfg = self.cfg
        self.stages = list(ORDER) if cfg.hyperzero_stage == "all" else [cfg.hyperzero_stage]
        self.contexts = context_grid(cfg)
        self.td3_cfg = td3_config(cfg)
        self.names = approximator_names(cfg)
        self.labels = regressor_labels(cfg)  # (label, approximator, seed); label = name without regressor seeds
        self.label_names = [label for label, _, _ in self.labels]
        counts = {"experts": max(1, math.ceil(cfg.num_frames / cfg.hyperzero_steps_per_iteration)), "dataset": 1,
                  "regressor": cfg.hyperzero_epochs, "evaluate": 1}
        self.plan = [(s, counts[s]) for s in self.stages]
        self.dataset_dir = cfg.hyperzero_dataset_dir or os.path.join(self.run_dir, "dataset")
        self.experts = None
        if "experts" in self.stages:
            self.experts = ExpertTraining(cfg.env_name, self.contexts, cfg.seed, self.td3_cfg, cfg.td3_seed_frames,
                                          cfg.hyperzero_episode_steps, cfg.env_kwargs, self.device)
        self.expert_agent_state = None  # kept after the experts stage (the buffers are dropped)
        # minibatch order: one generator per regressor seed, shared by that seed's approximators in turn
        self.data_gens = {s: torch.Generator().manual_seed(s) for s in regressor_seeds(cfg)}
        self.reg: dict | None = None      # regressor state, built when the stage starts
        self.zero_shot_rows: list[dict] | None = None
        self.stage_info: dict = {}

    @property
    def num_iterations(self) -> int:
        return sum(n for _, n in self.plan)

    def stage_of(self, index: int) -> tuple[str, int]:
        """(stage, iteration within the stage) of 0-based iteration ``index``."""
        for stage, n in self.plan:
            if index < n:
                return stage, index
            index -= n
        return self.plan[-1][0], self.plan[-1][1] - 1

    def progress_info(self) -> str:
        """The stage and the iteration within it (the frames stop at the experts' budget, while the
        regressor and evaluate stages can run for long), then the last evaluation's returns."""
        stage, i = self.stage_of(max(self.iter - 1, 0))
        return f"{stage} {i + 1}/{dict(self.plan)[stage]}  {super().progress_info()}".rstrip()

    # ------------------------------------------------------------------ iterations
    def train_iteration(self) -> dict:
        stage, i = self.stage_of(self.iter)
        n = dict(self.plan)[stage]
        return getattr(self, f"_{stage}_iteration")(i, i == n - 1)

    def _experts_iteration(self, i: int, last: bool) -> dict:
        sums: dict[str, float] = {}
        count = 0
        for _ in range(self.cfg.hyperzero_steps_per_iteration):
            stats = self.experts.step()
            if stats:
                count += 1
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + v
        self.frames += self.cfg.hyperzero_steps_per_iteration
        if last:
            self._save_experts()
        out = {k: v / max(count, 1) for k, v in sums.items()}
        if self.experts.finished_returns:
            out["train_return_mean"] = float(np.mean(self.experts.finished_returns[-1]))
        return {"td3": out} if out else {}

    def _save_experts(self) -> None:
        folder = os.path.join(self.run_dir, "experts")
        os.makedirs(folder, exist_ok=True)
        state = {"agent": self.experts.agent.state_dict(), "contexts": self.contexts, "env_name": self.cfg.env_name,
                 "obs_dim": self.experts.env.obs_dim, "act_dim": self.experts.env.nu, "seed": self.cfg.seed}
        torch.save(state, os.path.join(folder, "experts.pt"))
        self.expert_agent_state = state

    def _load_expert_agent(self) -> tuple[TD3Ensemble, np.ndarray]:
        state = self.expert_agent_state
        if state is None:
            if self.experts is not None:
                self._save_experts()
                state = self.expert_agent_state
            else:
                path = os.path.join(self.cfg.hyperzero_experts_run, "experts", "experts.pt")
                state = torch.load(path, map_location="cpu", weights_only=False)
        contexts = np.asarray(state["contexts"])
        agent = TD3Ensemble(len(contexts), state["obs_dim"], state["act_dim"], member_seeds(state["seed"], len(contexts)),
                            TD3Config(**state["agent"]["cfg"]), self.device)
        agent.load_state_dict(state["agent"])
        return agent, contexts

    def _dataset_iteration(self, i: int, last: bool) -> dict:
        cfg = self.cfg
        agent, contexts = self._load_expert_agent()

        def value(obs, action):
            return agent.q_values(obs.unsqueeze(1), action.unsqueeze(1))[0].squeeze(1)

        seed = cfg.seed + 1
        arrays = rollout(cfg.env_name, contexts, lambda obs, ctx: agent.act(obs, 0, explore=False),
                         cfg.hyperzero_rollout_episodes, seed, cfg.hyperzero_episode_steps, value=value,
                         env_kwargs=cfg.env_kwargs)
        rolls = [ds.ContextRollouts(float(m), float(L), {k: arrays[k][j] for k in ds.ARRAYS})
                 for j, (m, L) in enumerate(contexts)]
        ds.save_dataset(self.dataset_dir, rolls, cfg.env_name, agent.cfg.gamma,
                        extra={"rollout_seed": seed, "episode_steps": cfg.hyperzero_episode_steps})
        self.experts = None  # the replay buffers are no longer needed
        ret = arrays["return"].mean(1)
        self.stage_info["dataset"] = {"expert_return_mean": float(ret.mean()), "contexts": float(len(contexts))}
        return {"dataset": dict(self.stage_info["dataset"])}

    # ------------------------------------------------------------------ regressors
    def _setup_regressors(self) -> None:
        cfg = self.cfg
        meta, rolls = ds.load_dataset(self.dataset_dir)
        split = ds.split_contexts(rolls, cfg.hyperzero_input, cfg.seed, cfg.hyperzero_test_fraction)
        if not split["train"] or not split["test"]:
            raise ValueError(f"the dataset has {len(split['train']) + len(split['test'])} unique {cfg.hyperzero_input} "
                             "context(s): the split needs at least 2 (one to train on, one held out)")
        ds.write_split(self.dataset_dir, split)
        models = {}
        for label, name, seed in self.labels:
            torch.manual_seed(seed + self.names.index(name))
            model, use_td = build_approximator(name, ds.context_dim(cfg.hyperzero_input), meta["obs_dim"],
                                               meta["act_dim"], cfg.hyperzero_hidden, tuple(cfg.hyperzero_embed_widths))
            model.to(self.device)
            models[label] = {"model": model, "use_td": use_td, "name": name, "seed": seed,
                            "opt": torch.optim.Adam(model.parameters(), lr=cfg.hyperzero_lr),
                            "best": None, "best_valid": float("inf"), "best_epoch": -1, "epochs": 0}
        self.reg = {"models": models, "gamma": meta["gamma"], "split": split, "meta": meta}
        self._load_regressor_data(rolls)

    def _load_regressor_data(self, rolls=None) -> None:
        if rolls is None:
            _, rolls = ds.load_dataset(self.dataset_dir)
        split, inp = self.reg["split"], self.cfg.hyperzero_input
        to = self.device
        self.train_data = {k: v.to(to) for k, v in ds.flatten(ds.select(rolls, split, "train"), inp).items()}
        self.valid_data = {k: v.to(to) for k, v in ds.flatten(ds.select(rolls, split, "test"), inp).items()}

    def _loss(self, entry: dict, batch: dict) -> dict:
        cfg = self.cfg
        return losses(entry["model"], batch, self.reg["gamma"], entry["use_td"], cfg.hyperzero_value_weight,
                      cfg.hyperzero_td_weight)

    def _regressor_iteration(self, i: int, last: bool) -> dict:
        if self.reg is None:
            self._setup_regressors()
        n = len(self.train_data["state"])
        bs = self.cfg.hyperzero_batch_size
        stats = {}
        for name, entry in self.reg["models"].items():
            model, opt = entry["model"], entry["opt"]
            model.train()
            perm = torch.randperm(n, generator=self.data_gens[entry["seed"]]).to(self.device)
            sums: dict[str, float] = {}
            for start in range(0, n, bs):
                idx = perm[start:start + bs]
                out = self._loss(entry, {k: v[idx] for k, v in self.train_data.items()})
                opt.zero_grad(set_to_none=True)
                out["total"].backward()
                opt.step()
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + v.item() * len(idx)
            valid = self._validate(entry)
            entry["epochs"] += 1
            if valid["total"] < entry["best_valid"]:
                entry["best_valid"], entry["best_epoch"] = valid["total"], entry["epochs"]
                entry["best"] = copy.deepcopy(model.state_dict())
            stats.update({f"{name}/train_{k}": v / n for k, v in sums.items()})
            stats.update({f"{name}/valid_{k}": v for k, v in valid.items()})
        self.stage_info["regressor"] = {k: v for k, v in stats.items() if "/valid_total" in k}
        if last:
            self._save_regressors()
        return {"regressor": stats}

    @torch.no_grad()
    def _validate(self, entry: dict) -> dict:
        entry["model"].eval()
        n = len(self.valid_data["state"])
        sums: dict[str, float] = {}
        for start in range(0, n, 4096):
            batch = {k: v[start:start + 4096] for k, v in self.valid_data.items()}
            for k, v in self._loss(entry, batch).items():
                sums[k] = sums.get(k, 0.0) + v.item() * len(batch["state"])
        return {k: v / n for k, v in sums.items()}

    def _save_regressors(self) -> None:
        folder = os.path.join(self.run_dir, "models")
        os.makedirs(folder, exist_ok=True)
        cfg = self.cfg
        for label, e in self.reg["models"].items():
            torch.save({"name": e["name"], "seed": e["seed"], "state_dict": e["model"].state_dict(),
                        "best_state_dict": e["best"],
                        "best_epoch": e["best_epoch"], "best_valid_total": e["best_valid"], "input": cfg.hyperzero_input,
                        "split_seed": cfg.seed, "obs_dim": self.reg["meta"]["obs_dim"],
                        "act_dim": self.reg["meta"]["act_dim"], "hidden": cfg.hyperzero_hidden,
                        "embed_widths": list(cfg.hyperzero_embed_widths)}, os.path.join(folder, f"{label}.pt"))

    # ------------------------------------------------------------------ zero-shot evaluation
    def _load_models(self) -> tuple[dict, str, int]:
        folder = os.path.join(self.cfg.hyperzero_models_run or self.run_dir, "models")
        models, inp, split_seed = {}, None, None
        for label, name, _ in self.labels:
            state = torch.load(os.path.join(folder, f"{label}.pt"), map_location="cpu", weights_only=False)
            model, _ = build_approximator(name, ds.context_dim(state["input"]), state["obs_dim"], state["act_dim"],
                                          state["hidden"], tuple(state["embed_widths"]))
            use_best = self.cfg.hyperzero_eval_checkpoint == "best" and state["best_state_dict"] is not None
            model.load_state_dict(state["best_state_dict"] if use_best else state["state_dict"])
            models[label] = model.to(self.device)
            inp, split_seed = state["input"], state["split_seed"]
        return models, inp, split_seed

    def _evaluate_iteration(self, i: int, last: bool) -> dict:
        cfg = self.cfg
        models, inp, split_seed = self._load_models()
        meta = ds.load_meta(self.dataset_dir)
        split = ds.read_split(self.dataset_dir, inp, split_seed)
        test_keys = {tuple(k) for k in split["test"]}
        entries = [c for c in meta["contexts"] if ds.context_key(c["margin"], c["length"], inp) in test_keys]
        contexts = np.array([(c["margin"], c["length"]) for c in entries])
        rows = zs.zero_shot(models, contexts, np.array([c["expert_return"] for c in entries]), inp, cfg.env_name,
                            entries[0]["episodes"], meta["rollout_seed"], meta["episode_steps"], cfg.env_kwargs)
        groups = self._seed_groups()
        zs.write_results(rows, os.path.join(self.run_dir, "eval"), self.label_names, groups)
        zs.write_report(os.path.join(self.run_dir, "eval", "report.md"), rows, meta, split, groups, self.label_names)
        zs.plot_results(rows, self.label_names, os.path.join(self.run_dir, "plots", "zero_shot.png"), groups)
        print("\nzero-shot return on held-out contexts (ratio to the expert):\n"
              + zs.format_table(rows, self.label_names), flush=True)
        if groups:
            print(zs.format_seed_table(zs.seed_summary(rows, groups)), flush=True)
        self.zero_shot_rows = rows
        return {"zero_shot": zs.summary(rows, self.label_names, groups)}

    def _seed_groups(self) -> dict | None:
        """approximator -> {seed: label} when there are regressor seeds, else None."""
        if not self.cfg.hyperzero_regressor_seeds:
            return None
        groups: dict = {}
        for label, name, seed in self.labels:
            groups.setdefault(name, {})[seed] = label
        return groups

    # ------------------------------------------------------------------ evaluation hook
    def evaluate(self) -> dict:
        stage = self.stage_of(max(self.iter - 1, 0))[0]
        if self.zero_shot_rows is not None:
            return zs.summary(self.zero_shot_rows, self.label_names, self._seed_groups())
        if stage == "experts" and self.experts is not None:
            arrays = rollout(self.cfg.env_name, self.contexts, self.experts.policy(), 1, self.cfg.seed + 2,
                             self.cfg.hyperzero_episode_steps, env_kwargs=self.cfg.env_kwargs)
            ret = arrays["return"][:, 0]
            return {"returns": [float(ret.mean())], "expert_return_min": float(ret.min()),
                    "expert_return_max": float(ret.max())}
        if stage == "dataset" and "dataset" in self.stage_info:
            return dict(self.stage_info["dataset"])
        if stage == "regressor" and "regressor" in self.stage_info:
            return {k.replace("/", "_"): v for k, v in self.stage_info["regressor"].items()}
        return {}

    # ------------------------------------------------------------------ checkpoints
    def trainer_state(self) -> dict:
        state = {"data_gens": {s: g.get_state() for s, g in self.data_gens.items()}, "zero_shot_rows": self.zero_shot_rows,
                 "stage_info": copy.deepcopy(self.stage_info), "expert_agent_state": self.expert_agent_state}
        if self.experts is not None and self.expert_agent_state is None:
            state["experts"] = self.experts.state_dict(include_buffer=self.cfg.hyperzero_checkpoint_buffers)
        if self.reg is not None:
            state["reg"] = {"split": self.reg["split"], "gamma": self.reg["gamma"], "meta": self.reg["meta"],
                            "models": {n: {"model": e["model"].state_dict(), "opt": e["opt"].state_dict(),
                                           "best": e["best"], "best_valid": e["best_valid"],
                                           "best_epoch": e["best_epoch"], "epochs": e["epochs"]}
                                       for n, e in self.reg["models"].items()}}  # keyed by label
        return state

    def load_trainer_state(self, state: dict) -> None:
        for s, g in self.data_gens.items():
            g.set_state(state["data_gens"][s])
        self.zero_shot_rows = state["zero_shot_rows"]
        self.stage_info = state["stage_info"]
        self.expert_agent_state = state["expert_agent_state"]
        if "experts" in state:
            self.experts.load_state_dict(state["experts"])
        elif self.expert_agent_state is not None or self.stage_of(self.iter)[0] != "experts":
            self.experts = None
        if "reg" in state:
            self._setup_regressors()
            saved = state["reg"]
            self.reg["split"] = saved["split"]
            for name, e in self.reg["models"].items():
                s = saved["models"][name]
                e["model"].load_state_dict(s["model"])
                e["opt"].load_state_dict(s["opt"])
                e.update(best=s["best"], best_valid=s["best_valid"], best_epoch=s["best_epoch"], epochs=s["epochs"])
