"""``--num_seeds S``: S runs of the VariBAD-family loop (seeds seed, seed+1, ..., seed+S-1) in
one process, stepped in lock step.

Each member is a whole ``MetaLearner`` with its own run dir ``<run dir>/seed_<k>/`` (config.json,
logs, TensorBoard, evaluations, plots, checkpoints): a standalone run dir, so
``python main.py --resume <run dir>/seed_<k>`` continues that seed alone, and every analysis
tool reads it like any run. Members own their parameters, optimiser states, normalisers, VAE
buffer, envs and RNG streams. Per env step, the members' policies and belief encoders run as
ONE computation on parameters stacked along a member dimension (``models/members.py``), and
their envs as one env of S x N copies where the env declares its state
(``environments/members.py``: bit for bit each member's own env). By default
(``--stack_seed_updates``) so do their policy updates and, where ``vae_members.stackable``
allows, their VAE updates (one job on one thread for all members; same mathematics, float
rounding of batched matmuls and a GRU with its own backward). Each member's logs, evaluation and
checkpoints are its own code. With ``--stack_seed_updates false`` (or a VAE that cannot be
stacked) every member's numbers are bit for bit those of the same seed run alone
(tests/test_multi_seed.py).

The global RNG (python, numpy, torch) is per member: its state is swapped in around whatever a
member does alone, and during the batched steps each member draws its action noise from a
generator holding that state (what its own run would draw from the global RNG).

One iteration:
    1. every member's components' before_iteration hooks
    2. the batched rollout: per step one act for all members, one env step for all members
       (``environments.members.EnvGroup``, where the env declares its state; else each member's
       own), one belief step for all members, each member's storage/buffer writes
    3. every member's update up to the policy step (bonuses, returns, VAE update handed in: the
       stacked VAE job starts once all members handed theirs in and runs during 4 and the next 2)
    4. the members' policy updates as one, then each member's iteration count, NaN guard,
       logs/evaluation/checkpoint (with --stack_seed_updates false, 3 and 4 are each member's
       whole ``update`` in turn)
"""
from __future__ import annotations

import contextlib
import os

import torch

from agent import BeliefUpdater
from environments.members import EnvGroup, why_not_grouped
from models import members
from algorithms.ppo import update_members
from models.policy import ActResult, acting_fn, members_evaluator, mirrored
from trainers import trainer_class
from trainers.base import Interrupted, _CtrlC
from utils.checkpoint import CheckpointError, has_checkpoint, load_checkpoint_with_info
from utils.logger import Progress, save_json
from utils.seeding import rng_state, set_rng_state
from vae_members import StackedUpdates, stackable


def member_config(cfg, seed: int):
    """The config of one member: a one-seed run of ``seed`` (its config.json can be resumed alone)."""
    return type(cfg)(**{**cfg.to_dict(), "seed": seed, "num_seeds": 1, "progress_bar": False})


def member_dir(run_dir: str, seed: int) -> str:
    return os.path.join(run_dir, f"seed_{seed}")


def common_iteration(dirs: list[str]) -> int:
    """The iteration all seeds resume from: the oldest of their newest usable checkpoints (a run
    killed while its seeds were saving one after the other has some a checkpoint ahead; those
    use their previous one, at the others' iteration), or -1 (start over) if a seed has none."""
    newest = []
    for path in dirs:
        try:
            newest.append(load_checkpoint_with_info(path, log=None)[1].iteration if has_checkpoint(path) else -1)
        except CheckpointError:
            newest.append(-1)
    at = min(newest)
    if len(set(newest)) > 1:
        print(f"the seeds' newest checkpoints are at iterations {newest}: all resume from {at}", flush=True)
    return at


def _check_batchable(member) -> None:
    """ValueError where the batched act / belief step is not built for this config."""
    if not mirrored(member.policy):
        raise ValueError("--num_seeds > 1 needs the MLP actor-critic policy (no hypernetwork heads, no "
                         "task-inference warm-up, no zero-size embeddings)")
    if member.vae is not None:
        BeliefUpdater.of_members([member.agent.encoder], 1, member.device)  # raises if not built


class MultiSeedTrainer:
    def __init__(self, cfg, run_dir: str, resume: bool = False):
        self.cfg, self.run_dir = cfg, run_dir
        self.seeds = [cfg.seed + k for k in range(cfg.num_seeds)]
        self.members: list = []  # the seeds' trainers (cfg.trainer's class: MetaLearner)
        self.rng: list[dict] = []  # each member's global RNG state while it is not swapped in
        at = common_iteration([member_dir(run_dir, seed) for seed in self.seeds]) if resume else None
        for seed in self.seeds:
            mcfg, path = member_config(cfg, seed), member_dir(run_dir, seed)
            os.makedirs(path, exist_ok=True)
            # the member's config as it runs now (a resume may change num_frames, intervals, ...)
            save_json(mcfg.to_dict(), os.path.join(path, "config.json"))
            member = trainer_class(cfg.trainer)(mcfg, path, resume=resume, resume_max_iteration=at)  # seeds the RNG
            if not self.members:
                _check_batchable(member)  # before building the other seeds
            self.members.append(member)
            self.rng.append(rng_state())
        self.device = self.members[0].device
        self.stacked_vae = None
        vaes = [m.vae for m in self.members]
        if cfg.stack_seed_updates and vaes[0] is not None:
            why = stackable(vaes[0])
            if why is None:
                self.stacked_vae = StackedUpdates(vaes)
                self.stacked_vae.attach()
            else:
                print(f"--num_seeds: the seeds' VAE updates run one per seed ({why})", flush=True)
        ungrouped = ("the policy reads the env's belief or task at every step" if cfg.pass_belief_to_policy
                     or cfg.pass_task_to_policy else why_not_grouped([m.env for m in self.members]))
        self.env_group = None  # the seeds' envs stepped as one (environments/members.py)
        if ungrouped is None:
            self.env_group = EnvGroup([m.env for m in self.members], self.members[0].cfg, self.device)
        else:
            print(f"--num_seeds: the seeds' envs step one by one ({ungrouped})", flush=True)
        self.stop_requested = False
        frames = sum(m.frames for m in self.members)
        self.progress = Progress(cfg.num_frames * len(self.seeds), cfg.progress_bar, start_frames=frames)

    # ---------------------------------------------------------------- per-member RNG
    @contextlib.contextmanager
    def member(self, k: int):
        """Run a block as member k alone: its global RNG state in, and back out afterwards."""
        set_rng_state(self.rng[k])
        try:
            yield self.members[k]
        finally:
            self.rng[k] = rng_state()

    def _generators(self) -> list[torch.Generator]:
        """Generators holding each member's global torch RNG state on the training device."""
        gens = []
        for state in self.rng:
            g = torch.Generator(device=self.device)
            if self.device.type == "cuda":
                g.set_state(state["cuda"][self.device.index or 0])
            else:
                g.set_state(state["torch"])
            gens.append(g)
        return gens

    def _keep_generators(self, gens: list[torch.Generator]) -> None:
        for state, g in zip(self.rng, gens):
            if self.device.type == "cuda":
                state["cuda"] = [*state["cuda"]]
                state["cuda"][self.device.index or 0] = g.get_state()
            else:
                state["torch"] = g.get_state()

    # ---------------------------------------------------------------- the loop
    @property
    def num_iterations(self) -> int:
        return self.members[0].num_iterations

    @property
    def iter(self) -> int:
        return self.members[0].iter

    def request_stop(self) -> None:
        self.stop_requested = True

    def train(self, callbacks=()) -> dict:
        for m in self.members:
            m.callbacks = list(callbacks)
        with _CtrlC(self):
            for k, m in enumerate(self.members):
                if m.iter == 0:
                    with self.member(k):
                        m._evaluate_and_report()
            while self.iter < self.num_iterations and not self.stop_requested:
                self.train_iteration()
                if any(m.stop_requested for m in self.members):
                    self.stop_requested = True
        for k, m in enumerate(self.members):
            with self.member(k):
                m.save()
            m.reporter.close()
        self.progress.close()
        if getattr(self, "_interrupted", False):
            raise Interrupted(f"interrupted at iteration {self.iter}; checkpoints saved")
        for seed, m in zip(self.seeds, self.members):
            ret = m.last_eval.get("returns")
            if ret is not None:
                print(f"seed {seed}: final evaluation, return per episode: " + " ".join(f"{r:.3f}" for r in ret))
        return {}

    def train_iteration(self) -> None:
        for k, m in enumerate(self.members):
            with self.member(k):
                for c in m.components:
                    c.before_iteration(m)
        self.collect_rollout()
        if self.cfg.stack_seed_updates:
            begun = []
            for k, m in enumerate(self.members):
                with self.member(k):
                    begun.append(m.update_begin())
            policy_stats = self._stacked_policy_updates(begun)
            update = lambda k, m: m.update_policy(begun[k], policy_stats[k])  # noqa: E731
        else:  # each seed's whole update in turn, as in its single run (its VAE thread starts before the next seed's)
            update = lambda k, m: m.update()  # noqa: E731
        for k, m in enumerate(self.members):
            with self.member(k):
                stats = update(k, m)
                m.iter += 1
                m.check_finite(stats)
                m._on_iteration_end(stats)
        self.progress.update(sum(m.frames for m in self.members), self.progress_info())

    def _stacked_policy_updates(self, begun: list) -> list:
        """Every member's policy update as one (``algorithms.ppo.update_members``) where stacking is
        on and no component adds to the loss; else [None] * S (each member updates its own)."""
        ms = self.members
        if any(b is None or b[1] for b in begun):
            return [None] * len(ms)
        gens = self._generators()
        stats = update_members([m.updater for m in ms], [m.storage for m in ms],
                               members_evaluator([m.policy for m in ms]), gens)
        self._keep_generators(gens)
        return stats

    def progress_info(self) -> str:
        rets = [m.last_eval.get("returns") for m in self.members]
        if any(r is None for r in rets):
            return ""
        return "return/ep (mean over seeds) " + " ".join(f"{sum(r) / len(r):.2f}" for r in zip(*rets))

    @torch.inference_mode()
    def collect_rollout(self) -> None:
        """``MetaLearner.collect_rollout`` of every member, with one act and one belief step
        for all members per env step (the members' own named rollout steps around them)."""
        ms = self.members
        runs = [m.rollout_begin(belief_updater=False) for m in ms]
        gens = self._generators()
        act_fn = acting_fn([m.policy for m in ms], gens)
        encode = hidden = None
        if ms[0].vae is not None:
            encode = BeliefUpdater.of_members([m.agent.encoder for m in ms], self.cfg.num_processes, self.device)
            hidden = members.stack([r.hidden for r in runs])
        group = self.env_group
        if group is not None:
            group.begin()
        for _ in range(self.cfg.policy_num_steps):
            act = act_fn({k: torch.stack([r.inputs[k] for r in runs]) for k in runs[0].inputs})
            stepped = group.step(act.env_action) if group is not None else [None] * len(ms)
            steps = [m.rollout_env_step(ActResult(act.action[k], act.env_action[k]), stepped[k]) for k, m in enumerate(ms)]
            if encode is not None:
                out = encode.step_flat(hidden, *_stacked(steps, "enc_action", "next_obs", "reward"),
                                       torch.stack([m.obs for m in ms]), *_stacked(steps, "done"),
                                       any(st.any_done for st in steps))
                hidden = out[1]
                for k, st in enumerate(steps):
                    st.belief = tuple(t[k] for t in out)
            for m, run, st in zip(ms, runs, steps):
                m.rollout_record(run, st)
        self._keep_generators(gens)
        if group is not None:
            group.end()
        for m in ms:
            m.rollout_end()


def _stacked(steps: list, *names: str) -> list[torch.Tensor]:
    """The members' ``names`` entries of their env steps, stacked along the member dimension."""
    return [torch.stack([getattr(st, name) for st in steps]) for name in names]
