"""Throughput of the batched MuJoCo meta-envs vs gymnasium and raw physics.

Measures env-steps/s (one env-step = one copy advanced by frame_skip physics steps) with random
actions, N=16 copies, for
  - ours: HalfCheetahDir / AntGoal with num_threads=1, 2 and None (the default: auto-select),
  - gymnasium ``SyncVectorEnv`` of 16 ``HalfCheetah-v5`` / ``Ant-v5`` (default next-step autoreset),
  - raw ``mujoco.mj_step(model, data, nstep=5)`` over 16 MjData of our XML on one thread
    (for the ant also followed by ``mj_rnePostConstraint``, which AntGoal needs), no env logic.
Best of ``--repeats`` interleaved timed windows of ``--seconds`` each. Usage:

    python benchmarks/bench_mujoco_envs.py [--num-envs 16] [--seconds 2] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _window(step_fn, n, seconds):
    """-> (env-steps per wall-clock second, env-steps per CPU second of this process)."""
    k, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        for _ in range(10):
            step_fn()
        k += 10
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return k * n / dt, k * n / max(time.process_time() - c0, 1e-9)


def make_ours(name, n, threads):
    from environments import make_env

    env = make_env(name, num_envs=n, seed=0, num_threads=threads)
    env.reset()
    rng = np.random.default_rng(0)
    act_dim = env.action_space.shape[0]
    acts = [torch.from_numpy(rng.uniform(-1, 1, (n, act_dim)).astype(np.float32)) for _ in range(64)]
    state = {"i": 0}

    def step():
        state["i"] += 1
        _obs, _r, term, trunc, _info = env.step(acts[state["i"] % 64])
        done = term | trunc
        if done.any():
            env.reset_mdp(done)

    return step, env.close


def make_gym(env_id, n):
    import gymnasium as gym

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        venv = gym.vector.SyncVectorEnv([lambda: gym.make(env_id) for _ in range(n)])
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    acts = [rng.uniform(-1, 1, venv.action_space.shape).astype(np.float32) for _ in range(64)]
    state = {"i": 0}

    def step():
        state["i"] += 1
        venv.step(acts[state["i"] % 64])

    return step, venv.close


def make_raw(xml, n, frame_skip, rne):
    import mujoco

    from environments.mujoco.base import ASSETS

    m = mujoco.MjModel.from_xml_path(os.path.join(ASSETS, xml))
    datas = [mujoco.MjData(m) for _ in range(n)]
    rng = np.random.default_rng(0)
    acts = [rng.uniform(-1, 1, (n, m.nu)) for _ in range(64)]
    state = {"i": 0}

    def step():
        state["i"] += 1
        a = acts[state["i"] % 64]
        for i, d in enumerate(datas):
            d.ctrl[:] = a[i]
            mujoco.mj_step(m, d, nstep=frame_skip)
            if rne:
                mujoco.mj_rnePostConstraint(m, d)
        if state["i"] % 200 == 0:  # episodes of 200 steps, like the envs
            for d in datas:
                mujoco.mj_resetData(m, d)

    return step, lambda: None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    n, s, r = args.num_envs, args.seconds, args.repeats
    # gymnasium's HalfCheetah-v5 XML uses the deprecated `settotalmass`; MuJoCo then appends a warning
    # to MUJOCO_LOG.TXT in the working directory. Run from a scratch directory to keep the repo clean.
    os.chdir(tempfile.mkdtemp(prefix="bench_mujoco_"))

    methods = {}
    for label, ours, gym_id, xml, rne in [("HalfCheetah", "HalfCheetahDir", "HalfCheetah-v5", "half_cheetah.xml", False),
                                          ("Ant", "AntGoal", "Ant-v5", "ant.xml", True)]:
        methods[(label, "raw")] = make_raw(xml, n, 5, rne)
        methods[(label, "gym")] = make_gym(gym_id, n)
        methods[(label, "ours1")] = make_ours(ours, n, 1)
        methods[(label, "ours2")] = make_ours(ours, n, 2)
        methods[(label, "auto")] = make_ours(ours, n, None)
    for step, _ in methods.values():  # warm-up
        for _ in range(20):
            step()
    # interleaved windows (round-robin over the methods), best window per method: the box is shared
    # and noisy, and interleaving keeps a load change from biasing one method
    load0 = os.getloadavg()[0]
    best = {k: 0.0 for k in methods}
    best_cpu = {k: 0.0 for k in methods}
    for _ in range(r):
        for k, (step, _) in methods.items():
            wall, cpu = _window(step, n, s)
            best[k] = max(best[k], wall)
            best_cpu[k] = max(best_cpu[k], cpu)
    load1 = os.getloadavg()[0]
    for _, close in methods.values():
        close()
    for title, table in (("wall-clock env-steps/s", best), ("env-steps per CPU-second of this process "
                                                           "(robust to other load; 2 threads count both cores)",
                                                           best_cpu)):
        print(f"\n{title}: N={n}, best of {r} interleaved {s}s windows, torch threads 1, "
              f"cores {os.cpu_count()}, load avg {load0:.2f} -> {load1:.2f}")
        hdr = f"{'model':<12}{'ours 1 thr':>12}{'ours 2 thr':>12}{'ours auto':>11}{'gym Sync16':>12}" \
              f"{'raw mj_step':>13}{'auto/gym':>10}{'auto/raw':>10}{'1thr/gym':>10}{'1thr/raw':>10}"
        print(hdr)
        print("-" * len(hdr))
        for label in ("HalfCheetah", "Ant"):
            o1, o2, oa, g, raw = (table[(label, k)] for k in ("ours1", "ours2", "auto", "gym", "raw"))
            print(f"{label:<12}{o1:>12,.0f}{o2:>12,.0f}{oa:>11,.0f}{g:>12,.0f}{raw:>13,.0f}"
                  f"{oa / g:>10.2f}{oa / raw:>10.2f}{o1 / g:>10.2f}{o1 / raw:>10.2f}")
    print("(ours = HalfCheetahDir / AntGoal incl. obs/reward/torch conversion and resets every 200 steps; "
          "gym = gymnasium SyncVectorEnv of 16 HalfCheetah-v5 / Ant-v5; raw = bare mj_step(nstep=5) loop "
          "on one thread, + mj_rnePostConstraint for the ant)")

if __name__ == "__main__":
    main()
