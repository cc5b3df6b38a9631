"""A checker of the batched meta-environment contract (``environments/base.py``) for envs that
users register: ``check_env(MyEnv)`` raises ``EnvContractError`` with a message that says what
is wrong (shapes, dtypes, devices, done/reset semantics, determinism under a seed), or returns
None. It builds small copies of the env (``num_envs`` copies) and steps them with actions
drawn from a private generator; the global RNG states are restored afterwards.
"""
from __future__ import annotations

import random
from typing import Any, Callable

import numpy as np
import torch


class EnvContractError(ValueError):
    """The env breaks the batched env contract; the message names the env, the call and the defect."""


def _fmt_shape(x: Any) -> str:
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__


class _Checker:
    def __init__(self, factory: Callable, num_envs: int, seed: int, device, kwargs: dict):
        self.factory, self.n, self.seed, self.device, self.kwargs = factory, num_envs, seed, device, kwargs
        self.name = getattr(factory, "__name__", type(factory).__name__)

    def fail(self, msg: str) -> None:
        raise EnvContractError(f"env {self.name}: {msg}")

    # ----------------------------------------------------------------- building blocks
    def make(self, seed: int):
        try:
            env = self.factory(num_envs=self.n, seed=seed, device=self.device, **self.kwargs)
        except Exception as err:  # noqa: BLE001  (any failure of user code is reported)
            self.fail(f"constructing it with num_envs={self.n}, seed={seed}, device={self.device!r} failed: "
                      f"{type(err).__name__}: {err}")
        return env

    def call(self, what: str, fn: Callable, *args):
        try:
            return fn(*args)
        except EnvContractError:
            raise
        except Exception as err:  # noqa: BLE001
            self.fail(f"{what} raised {type(err).__name__}: {err}")

    def tensor(self, what: str, x: Any, shape: tuple, dtype: torch.dtype | None, env, finite: bool = False,
               on_device: bool = True) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            self.fail(f"{what} is a {type(x).__name__}, expected a torch tensor of shape {shape}")
        if tuple(x.shape) != shape:
            self.fail(f"{what} has shape {_fmt_shape(x)}, expected {shape}")
        if dtype is not None and x.dtype != dtype:
            self.fail(f"{what} has dtype {x.dtype}, expected {dtype}")
        if on_device and x.device != torch.device(env.device):
            self.fail(f"{what} is on device {x.device}, expected env.device ({env.device})")
        if finite and not bool(torch.isfinite(x).all()):
            self.fail(f"{what} holds NaN or inf")
        return x

    def attributes(self, env) -> None:
        if getattr(env, "num_envs", None) != self.n:
            self.fail(f"num_envs is {getattr(env, 'num_envs', None)!r}, expected {self.n} (call MetaEnv.__init__)")
        space = getattr(env, "observation_space", None)
        if space is None or getattr(space, "shape", None) is None or len(space.shape) != 1:
            self.fail(f"observation_space must be a 1-D gymnasium space, got {space!r}")
        act = getattr(env, "action_space", None)
        if act is None or not (hasattr(act, "n") or (getattr(act, "shape", None) is not None and len(act.shape) == 1)):
            self.fail(f"action_space must be Discrete or a 1-D Box, got {act!r}")
        for attr, low in (("max_episode_steps", 1), ("task_dim", 0), ("belief_dim", 0)):
            val = getattr(env, attr, None)
            if not isinstance(val, int) or isinstance(val, bool) or val < low:
                self.fail(f"{attr} must be an int >= {low}, got {val!r}")
        num_tasks = getattr(env, "num_tasks", None)
        if num_tasks is not None and (not isinstance(num_tasks, int) or num_tasks < 1):
            self.fail(f"num_tasks must be None or an int >= 1, got {num_tasks!r}")

    def actions(self, env, gen: torch.Generator) -> torch.Tensor:
        space = env.action_space
        if hasattr(space, "n"):
            return torch.randint(int(space.n), (self.n,), generator=gen).to(env.device)
        low = torch.as_tensor(np.nan_to_num(space.low, nan=-1.0, posinf=1.0, neginf=-1.0), dtype=torch.float32)
        high = torch.as_tensor(np.nan_to_num(space.high, nan=1.0, posinf=1.0, neginf=-1.0), dtype=torch.float32)
        u = torch.rand(self.n, *space.shape, generator=gen)
        return (low + u * (high - low)).to(env.device)

    def obs(self, env, what: str, x) -> torch.Tensor:
        return self.tensor(what, x, (self.n, env.obs_dim), torch.float32, env, finite=True)

    def task(self, env, what: str = "get_task()") -> torch.Tensor:
        return self.tensor(what, self.call(what, env.get_task), (self.n, env.task_dim), torch.float32, env, finite=True)

    def step(self, env, actions: torch.Tensor, t: int):
        out = self.call(f"step() (step {t})", env.step, actions)
        if not isinstance(out, tuple) or len(out) != 5:
            self.fail(f"step() must return (obs, reward, terminated, truncated, info), got "
                      f"{type(out).__name__} of length {len(out) if isinstance(out, (tuple, list)) else '?'}")
        obs, rew, term, trunc, info = out
        self.obs(env, "step() observation", obs)
        self.tensor("step() reward", rew, (self.n,), torch.float32, env, finite=True)
        self.tensor("step() terminated", term, (self.n,), torch.bool, env)
        self.tensor("step() truncated", trunc, (self.n,), torch.bool, env)
        if not isinstance(info, dict):
            self.fail(f"step() info must be a dict, got {type(info).__name__}")
        for key, val in info.items():
            if not isinstance(val, torch.Tensor) or val.dim() == 0 or val.shape[0] != self.n:
                self.fail(f"step() info[{key!r}] must be a tensor with a first dim of {self.n} (one per copy), "
                          f"got {_fmt_shape(val)}")
        return obs, rew, term, trunc, info

    # ----------------------------------------------------------------- the checks
    def spaces_and_reset(self, env) -> None:
        self.attributes(env)
        self.obs(env, "reset() observation", self.call("reset()", env.reset))
        self.task(env)
        tasks = self.call("sample_tasks(2)", env.sample_tasks, 2)
        # tasks may come on the CPU and in any float dtype: reset() moves them to the env
        self.tensor("sample_tasks(2)", tasks, (2, env.task_dim), None, env, finite=True, on_device=False)
        self.obs(env, "reset_mdp() observation", self.call("reset_mdp()", env.reset_mdp))
        if env.belief_dim > 0:
            self.tensor("get_belief()", self.call("get_belief()", env.get_belief), (self.n, env.belief_dim),
                        torch.float32, env, finite=True)
        if env.num_tasks is not None:
            ids = self.call("task_to_id(get_task())", env.task_to_id, env.get_task())
            if not isinstance(ids, torch.Tensor) or tuple(ids.shape) != (self.n,):
                self.fail(f"task_to_id(get_task()) has shape {_fmt_shape(ids)}, expected ({self.n},)")
            if bool(((ids < 0) | (ids >= env.num_tasks)).any()):
                self.fail(f"task_to_id gives ids outside 0..{env.num_tasks - 1}: {ids.tolist()}")

    def time_limit(self, env, max_steps: int) -> None:
        """truncated is False before max_episode_steps and True at it (for copies not terminated)."""
        horizon = env.max_episode_steps
        if horizon > max_steps:
            return
        self.call("reset_mdp()", env.reset_mdp)
        gen = torch.Generator().manual_seed(self.seed + 1)
        ever_done = torch.zeros(self.n, dtype=torch.bool)
        for t in range(1, horizon + 1):
            _, _, term, trunc, _ = self.step(env, self.actions(env, gen), t)
            term, trunc = term.cpu(), trunc.cpu()
            live = ~ever_done
            if t < horizon and bool((trunc & live).any()):
                self.fail(f"step() truncated copies {torch.nonzero(trunc & live).flatten().tolist()} at step {t}, "
                          f"before max_episode_steps={horizon}")
            if t == horizon and not bool((trunc | term | ever_done).all()):
                self.fail(f"step() did not set truncated at max_episode_steps={horizon} "
                          f"(copies {torch.nonzero(~(trunc | term | ever_done)).flatten().tolist()})")
            ever_done |= term | trunc

    def masked_resets(self, env) -> None:
        """reset(mask) / reset_mdp(mask) change only the masked copies."""
        gen = torch.Generator().manual_seed(self.seed + 2)
        self.call("reset()", env.reset)
        obs = None
        for t in range(1, min(3, env.max_episode_steps)):
            obs = self.step(env, self.actions(env, gen), t)[0]
        if obs is None:  # horizon 1: the state after reset
            obs = self.call("reset_mdp()", env.reset_mdp)
        mask = torch.zeros(self.n, dtype=torch.bool, device=env.device)
        mask[0] = True
        for what, fn, args in (("reset_mdp(mask)", env.reset_mdp, (mask,)), ("reset(mask)", env.reset, (mask,))):
            before_obs, before_task = obs.clone(), self.task(env).clone()
            after = self.obs(env, f"{what} observation", self.call(what, fn, *args))
            task = self.task(env, f"get_task() after {what}")
            keep = ~mask
            if not torch.equal(after[keep], before_obs[keep]):
                self.fail(f"{what} with only copy 0 masked changed the observations of the other copies")
            if not torch.equal(task[keep], before_task[keep]):
                self.fail(f"{what} with only copy 0 masked changed the tasks of the other copies")
            if what.startswith("reset_mdp") and not torch.equal(task, before_task):
                self.fail("reset_mdp(mask) changed a task (it starts a new episode of the same task)")
            obs = after

    def determinism(self, steps: int) -> None:
        """Two envs with the same seed give the same tasks and trajectories (whatever the global RNG)."""
        runs = []
        for global_seed in (1234, 4321):  # different global RNG: an env must use its own generator
            torch.manual_seed(global_seed)
            np.random.seed(global_seed)
            random.seed(global_seed)
            env = self.make(self.seed)
            gen = torch.Generator().manual_seed(self.seed + 3)
            record = [("reset", self.call("reset()", env.reset).cpu().clone()), ("task", self.task(env).cpu().clone())]
            for t in range(1, min(steps, env.max_episode_steps) + 1):
                obs, rew, term, trunc, _ = self.step(env, self.actions(env, gen), t)
                record += [(f"step {t} observation", obs.cpu().clone()), (f"step {t} reward", rew.cpu().clone()),
                           (f"step {t} terminated", term.cpu().clone())]
            record.append(("sample_tasks(4)", self.call("sample_tasks(4)", env.sample_tasks, 4).cpu().clone()))
            self.call("close()", getattr(env, "close", lambda: None))
            runs.append(record)
        for (what, a), (_, b) in zip(*runs):
            if not torch.equal(a, b):
                self.fail(f"two envs built with seed={self.seed} differ in {what}: draw random numbers from the "
                          f"env's own generator (self.rand / self.generator), not the global RNG")


def check_env(env_cls_or_factory: Callable, num_envs: int = 3, seed: int = 0, device: str | torch.device = "cpu",
              max_steps: int = 2000, determinism_steps: int = 20, **env_kwargs) -> None:
    """Check the batched env contract; raise ``EnvContractError`` saying what is wrong.

    ``env_cls_or_factory(num_envs=..., seed=..., device=..., **env_kwargs)`` builds the env.
    Checked: attributes and spaces; shapes, dtypes (float32 / bool) and devices of reset,
    reset_mdp, step (obs [N, obs_dim], reward [N], terminated/truncated [N] bool, info tensors
    [N, ...]), get_task [N, task_dim], sample_tasks, get_belief, task_to_id; truncation exactly
    at max_episode_steps (when it is <= ``max_steps``); reset(mask) and reset_mdp(mask) leave
    the other copies untouched; the same seed gives the same tasks and trajectories.
    """
    if num_envs < 2:
        raise ValueError("check_env needs num_envs >= 2 (masked resets are checked)")
    checker = _Checker(env_cls_or_factory, num_envs, seed, device, env_kwargs)
    states = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    try:
        env = checker.make(seed)
        try:
            checker.spaces_and_reset(env)
            checker.time_limit(env, max_steps)
            checker.masked_resets(env)
        finally:
            try:
                env.close()
            except Exception:  # noqa: BLE001
                pass
        checker.determinism(determinism_steps)
    finally:
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])
