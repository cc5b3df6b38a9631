"""Experiment sets (experiments/): the set format and its validation, results and statistics
without Ray; and on a REAL local Ray instance (marked ``ray``; ``-m ray`` / ``-m "not ray"``):
a tiny set whose driver is killed mid-run and then ``--resume``d finishes with every trial
continued from its own checkpoint (frames counted once), leaves no Ray processes behind, and
plots one curve per arm over its seeds."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, tiny
from experiments import sets
from experiments.results import Run
from experiments.sets import SetError, Trial


def write_set(folder, name: str, spec: dict) -> str:
    path = os.path.join(str(folder), f"{name}.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    return path


def tiny_options(**extra) -> dict:
    opts = tiny(**extra)
    opts.pop("num_frames")
    return opts


# ------------------------------------------------------------------ the set format (no Ray)
def test_catalog_sets_are_valid_and_cover_the_old_suites():
    names = sets.available()
    for name in ("hyperx", "hypernet_grid", "tmaze_small", "hypernet_main_grid", "hypernet_main_tmaze", "hyperx_main"):
        assert name in names
    counts = {name: len(sets.load(name).trials) for name in names}
    assert counts["hyperx"] == 4 * 3 and counts["hypernet_grid"] == 5 * 3 and counts["tmaze_small"] == 2 * 3
    small = sets.load("tmaze_small").trials[0].config()
    assert small.env_kwargs == {"maze_length": 20, "max_episode_steps": 40} and small.method == "splagger"
    main = sets.load("hyperx_main")
    assert {t.env_type for t in main.trials} >= {"room_hyperx", "cds_hyperx", "sparse_ant_goal_hyperx",
                                                  "pointrobot_sparse_hyperx", "treasure_hunt_hyperx"}
    assert {t.arm: t.num_frames for t in main.trials}["sparse_ant_goal_hyperx"] == 400_000_000  # the preset's budget


def test_expand_arms_grid_seeds(tmp_path):
    path = write_set(tmp_path, "grid", dict(env_types=["gridworld_varibad"], methods=["rnn", "rnn_hn"],
                                            grid={"lr_policy": [1e-3, 3e-4]}, seeds=[1, 2], num_frames=2.5e3,
                                            options={"eval_interval": 5}))
    exp = sets.load(path)
    assert len(exp.trials) == 2 * 2 * 2
    assert len({t.trial_id for t in exp.trials}) == 8
    assert exp.arms() == ["gridworld_varibad+rnn", "gridworld_varibad+rnn_hn"]
    assert len(exp.variants()) == 4
    t = exp.trials[0]
    assert t.values == {"eval_interval": 5, "lr_policy": 1e-3, "seed": 1, "num_frames": 2500, "method": "rnn"}
    cfg = t.config()
    assert (cfg.lr_policy, cfg.seed, cfg.num_frames, cfg.method, cfg.eval_interval) == (1e-3, 1, 2500, "rnn", 5)
    assert Trial.from_dict(json.loads(json.dumps(t.to_dict()))) == t


@pytest.mark.parametrize("spec, words", [
    (dict(arms=["gridworld_varibad"], seeds=[1], num_frames=1000, options={"lr_polcy": 1e-3}), ["lr_polcy", "lr_policy"]),
    (dict(arms=["gridworld_varibadd"], seeds=[1], num_frames=1000), ["unknown env-type", "gridworld_varibadd"]),
    (dict(arms=["gridworld_varibad:rnn_hnn"], seeds=[1], num_frames=1000), ["unknown method", "rnn_hnn"]),
    (dict(arms=["gridworld_varibad"], seeds=[1], num_frames=1000, grid={"lr_policy": []}), ["grid['lr_policy']"]),
    (dict(arms=["gridworld_varibad"], seeds=[1], num_frames=1000, grid={"lr_policy": 1e-3}), ["grid['lr_policy']"]),
    (dict(arms=["gridworld_varibad"], seeds=[1], num_frames=1000, grid={"lr_policy": ["fast"]}), ["lr_policy='fast'"]),
    (dict(arms=["gridworld_varibad"], seeds=[1, 1], num_frames=1000), ["seeds repeat"]),
    (dict(arms=["gridworld_varibad"], seeds=[], num_frames=1000), ["seeds must be"]),
    (dict(arms=["gridworld_varibad"], seeds=[1], num_frames=-5), ["num_frames"]),
    (dict(arms=["gridworld_varibad"], seeds=[1], num_frames=1000, options={"seed": 3}), ["'seed' is set by"]),
    (dict(arms=["gridworld_varibad"], seeds=[1], num_frames=1000, options={"num_seeds": 4}), ["'num_seeds' is set by"]),
    (dict(arms=[], seeds=[1], num_frames=1000), ["no arms"]),
    (dict(arms=["gridworld_varibad"], seeds=[1], num_frames=1000, budget=5), ["unknown key", "budget"]),
    (dict(arms=["gridworld_varibad"], seeds=[1], num_frames=1000, options={"ppo_num_minibatch": 10 ** 6}),
     ["ppo_num_minibatch"]),  # a cross-field rule of config.loader.validate
])
def test_malformed_sets_are_refused_with_a_clear_error(tmp_path, spec, words):
    with pytest.raises(SetError) as err:
        sets.load(write_set(tmp_path, "bad", spec))
    for word in words:
        assert word in str(err.value)


def test_malformed_python_set_files(tmp_path):
    (tmp_path / "syntax.py").write_text("SET = dict(arms=[\n")
    (tmp_path / "noset.py").write_text("ARMS = []\n")
    with pytest.raises(SetError, match="could not be read"):
        sets.load(str(tmp_path / "syntax.py"))
    with pytest.raises(SetError, match="defines no SET"):
        sets.load(str(tmp_path / "noset.py"))
    with pytest.raises(SetError, match="unknown experiment set"):
        sets.load("hypernet_gird")


def test_run_command_refuses_a_bad_set_before_anything_starts(tmp_path, capsys):
    from experiments.run import main

    path = write_set(tmp_path, "bad", dict(arms=["gridworld_varibad", "gridworld_varibad:nope"], seeds=[1],
                                           num_frames=1000, options={"not_an_option": 1}))
    root = tmp_path / "results"
    assert main([path, "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert "not_an_option" in err and "nope" in err  # every problem in one message
    assert not root.exists()  # nothing was started, no folder made


def test_run_command_refuses_to_start_over_existing_runs(tmp_path, capsys):
    from experiments.run import main

    path = write_set(tmp_path, "again", dict(arms=["gridworld_varibad"], seeds=[1], num_frames=1000))
    os.makedirs(tmp_path / "results" / "again" / "gridworld_varibad__seed1")
    assert main([path, "--root", str(tmp_path / "results")]) == 2
    assert "--resume" in capsys.readouterr().err


def test_truncate_progress_drops_rows_after_the_checkpoint(tmp_path):
    from experiments.trial import truncate_progress

    path = tmp_path / "progress.csv"
    path.write_text("return_episode_1,iteration,frames\n0.1,0,0\n0.2,4,512\n0.3,8,1024\n0.4,12,1536\n")
    assert truncate_progress(str(tmp_path), 8) == 1
    assert path.read_text().splitlines()[-1] == "0.3,8,1024"
    assert truncate_progress(str(tmp_path), 0) == 3  # continued from iteration 0: evaluated again
    assert path.read_text().splitlines() == ["return_episode_1,iteration,frames"]


def _fake_run(arm: str, lr: float, seed: int, final: float, env: str = "gridworld_varibad") -> Run:
    trial = Trial("s", arm, env, None, {"lr_policy": lr}, seed, {"num_frames": 100})
    rows = [{"iteration": i, "frames": 10.0 * i, "return_episode_1": final * i / 10, "return_episode_2": final * i / 10}
            for i in range(11)]
    return Run(trial, "/nonexistent", "done", rows)


def test_best_grid_point_and_aggregates():
    from experiments import stats

    runs = [_fake_run("a", lr, s, final) for lr, final in ((1e-3, 1.0), (3e-4, 5.0)) for s in (1, 2, 3)]
    runs += [_fake_run("b", lr, s, final + s) for lr, final in ((1e-3, 2.0), (3e-4, 0.0)) for s in (1, 2, 3)]
    best = stats.best_points(runs)
    assert best["a"]["point"] == {"lr_policy": 3e-4} and best["b"]["point"] == {"lr_policy": 1e-3}
    assert best["a"]["mean"] == pytest.approx(5.0 * 0.9)  # mean of the last 3 evaluations (0.8, 0.9, 1.0 of final)
    chosen = stats.selected(runs)
    assert {r.trial.variant for r in chosen} == {"a[lr_policy=0.0003]", "b[lr_policy=0.001]"}
    agg = stats.aggregates(chosen, reps=200)
    (_, x, y, p, _), = agg["poi"]
    # a: 4.5 in every seed; b: 2.7, 3.6, 4.5 -> P(a > b) = (2 + 0.5) / 3
    assert (x, y) == ("a[lr_policy=0.0003]", "b[lr_policy=0.001]") and p == pytest.approx(5 / 6)
    assert agg["per_variant"]["a[lr_policy=0.0003]"]["mean"] == pytest.approx(4.5)


def test_no_ray_crash_then_resume_continues_from_the_checkpoint(tmp_path, capsys):
    """Without Ray (--no-ray): a trial that crashes after its first checkpoint is continued by
    --resume from that checkpoint (frames counted once); finished trials are skipped."""
    from experiments.results import read_progress
    from experiments.run import main
    from experiments.trial import run_trial

    path = write_set(tmp_path, "noray", dict(arms=["gridworld_varibad:rnn"], seeds=[1, 2], num_frames=512,
                                             options=tiny_options(eval_interval=2)))
    root = str(tmp_path / "results")
    exp = sets.load(path)
    first = exp.trials[0]
    run_dir = os.path.join(root, "noray", first.trial_id)

    def crash(metrics):
        if metrics["frames"] >= 256:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        run_trial(first, run_dir, report=crash)
    assert main([path, "--root", root, "--no-ray"]) == 2  # runs exist: refuses without --resume
    assert main([path, "--root", root, "--no-ray", "--resume"]) == 0
    assert "(0 finished, 2 to run)" in capsys.readouterr().out
    info = _trial_infos(os.path.join(root, "noray"))[first.trial_id]
    assert [(s["resumed"], s["frames"]) for s in info["starts"]] == [(False, 0), (True, 256)]
    rows = read_progress(os.path.join(run_dir, "progress.csv"))
    assert [r["iteration"] for r in rows] == [0, 2, 4] and rows[-1]["frames"] == 512
    assert main([path, "--root", root, "--no-ray", "--resume"]) == 0
    assert "(2 finished, 0 to run)" in capsys.readouterr().out


def test_per_arm_asha_compares_trials_within_their_arm_only():
    pytest.importorskip("ray")
    from types import SimpleNamespace

    from ray.tune.schedulers import TrialScheduler

    from experiments.ray_runner import per_arm_asha

    sched = per_arm_asha(grace_fraction=0.25, reduction=2)
    sched.set_search_properties("score", "max")

    def trial(tid: str, arm: str):
        return SimpleNamespace(trial_id=tid, config={"trial": {"group": arm, "budget": 100}})

    a1, a2, b1 = trial("a1", "a"), trial("a2", "a"), trial("b1", "b")
    for t in (a1, a2, b1):
        sched.on_trial_add(None, t)
    assert sched.on_trial_result(None, a1, {"frames": 25, "score": 5.0}) == TrialScheduler.CONTINUE
    assert sched.on_trial_result(None, a2, {"frames": 25, "score": 1.0}) == TrialScheduler.STOP  # worse than a1
    # far below arm a, but alone in its arm: another method is never stopped by arm a's learning rates
    assert sched.on_trial_result(None, b1, {"frames": 25, "score": -100.0}) == TrialScheduler.CONTINUE
    assert sched.on_trial_result(None, a1, {"frames": 100, "score": 6.0}) == TrialScheduler.CONTINUE  # runs to its budget


# ------------------------------------------------------------------ a real local Ray instance
BUDGET = 768  # 6 iterations of 128 frames; evaluations (and checkpoints) every 2


def _trial_infos(folder: str) -> dict[str, dict]:
    from experiments.trial import read_json

    out = {}
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        info = read_json(os.path.join(folder, name, "trial.json"))
        if info:
            out[name] = info
    return out


def _alive(pids: list[int]) -> list[int]:
    import psutil

    return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def _wait(folder: str, driver, until, seconds: float = 240) -> dict:
    t0 = time.time()
    while time.time() - t0 < seconds and driver.poll() is None:
        infos = _trial_infos(folder)
        hit = until(infos)
        if hit:
            return hit
        time.sleep(0.2)
    return {}


def _listening(folder: str) -> set[str]:
    """The addresses the local Ray instance's processes listen on (TCP)."""
    import psutil

    with open(os.path.join(folder, ".ray_local_pids.json")) as f:
        pids = [p["pid"] for p in json.load(f)["processes"]]
    addrs = set()
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.Error:
            continue
        addrs |= {c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN}
    return addrs


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """A tiny set (2 arms x 2 seeds) with --retries 1: once a trial has checkpointed mid-run its
    worker process is killed (Ray retries it), then the driver is SIGKILLed, then the set is
    continued with --resume. Returns what the tests check."""
    pytest.importorskip("ray")
    pytest.importorskip("psutil")
    tmp = tmp_path_factory.mktemp("ray_set")
    path = write_set(tmp, "tinyset", dict(env_types=["gridworld_varibad"], methods=["rnn", "rnn_hn"], seeds=[1, 2],
                                          num_frames=BUDGET, options=tiny_options(eval_interval=2)))
    root = str(tmp / "results")
    folder = os.path.join(root, "tinyset")
    cmd = [sys.executable, "-m", "experiments.run", path, "--root", root, "--max-concurrent", "2", "--num-cpus", "2"]
    env = {**os.environ, "PYTHONPATH": ROOT}
    t0 = time.time()
    with open(tmp / "first.log", "w") as log:
        driver = subprocess.Popen(cmd + ["--retries", "1"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        mid_run = _wait(folder, driver, lambda infos: next(
            ((n, i) for n, i in infos.items() if 0 < i.get("last", {}).get("frames", 0) < BUDGET), None))
        assert mid_run, "no trial checkpointed mid-run: " + (tmp / "first.log").read_text()
        failed, info = mid_run
        listening = _listening(folder)
        os.kill(info["starts"][-1]["pid"], signal.SIGKILL)  # the trial's worker: a failure Ray retries
        retried = _wait(folder, driver, lambda infos: len(infos.get(failed, {}).get("starts", [])) == 2, 120)
        assert driver.poll() is None, "the set finished before it could be interrupted: " + (tmp / "first.log").read_text()
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    at_kill = _trial_infos(folder)
    with open(os.path.join(folder, ".ray_local_pids.json")) as f:
        first_pids = [p["pid"] for p in json.load(f)["processes"]]
    t1 = time.time()
    resumed = subprocess.run(cmd + ["--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    return dict(path=path, root=root, folder=folder, at_kill=at_kill, first_pids=first_pids, resumed=resumed,
                failed=failed, listening=listening, retried=bool(retried), first_log=(tmp / "first.log").read_text(),
                seconds=(t1 - t0, time.time() - t1))


@pytest.mark.ray
def test_killed_set_resumes_from_checkpoints(killed_and_resumed):
    from experiments.results import read_progress

    r = killed_and_resumed
    assert r["resumed"].returncode == 0, r["resumed"].stdout + r["resumed"].stderr
    assert "trials finished" in r["resumed"].stdout and "not finished" not in r["resumed"].stdout
    infos = _trial_infos(r["folder"])
    assert len(infos) == 4
    continued = 0
    for name, info in infos.items():
        assert info["status"] == "done", name
        rows = read_progress(os.path.join(r["folder"], name, "progress.csv"))
        iterations = [row["iteration"] for row in rows]
        assert iterations == sorted(set(iterations)) == [0, 2, 4, 6], (name, iterations)  # each evaluation once
        assert rows[-1]["frames"] == BUDGET  # frames counted once: the budget, not more
        if r["at_kill"].get(name, {}).get("status") == "done":
            assert len(info["starts"]) == 1  # finished before the kill: not run again
        for start in info["starts"][1:]:
            if start["resumed"]:  # continued from a checkpoint taken at one of its evaluations
                continued += 1  # (768: its final checkpoint, written before the kill marked it done)
                assert start["frames"] in (256, 512, BUDGET), info["starts"]
    assert continued >= 2, "the retried trial and the interrupted ones continue from their checkpoints"
    print(f"first driver ran {r['seconds'][0]:.1f} s until killed; --resume took {r['seconds'][1]:.1f} s")
    # the killed driver's Ray processes were ended by --resume; the resumed run left none behind
    assert _alive(r["first_pids"]) == []
    assert not os.path.exists(os.path.join(r["folder"], ".ray_local_pids.json"))


@pytest.mark.ray
def test_local_instance_listens_on_loopback_only(killed_and_resumed):
    addrs = killed_and_resumed["listening"]
    assert addrs and addrs <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, addrs


@pytest.mark.ray
def test_a_failed_trial_is_retried_from_its_checkpoint(killed_and_resumed):
    r = killed_and_resumed
    assert r["retried"] and f"retrying  {r['failed']}" in r["first_log"], r["first_log"]
    starts = _trial_infos(r["folder"])[r["failed"]]["starts"]
    assert starts[1]["resumed"] and starts[1]["frames"] > 0  # the retry continued, not from scratch


@pytest.mark.ray
def test_plot_has_one_curve_per_arm_over_its_seeds(killed_and_resumed, tmp_path):
    pytest.importorskip("seaborn")
    from experiments.plot import plot

    res = plot(killed_and_resumed["path"], killed_and_resumed["root"], out=str(tmp_path))
    assert res.curves == {"gridworld_varibad+rnn": 2, "gridworld_varibad+rnn_hn": 2}
    for f in res.files:
        assert os.path.getsize(f) > 0
    assert any(f.endswith("_curves.png") for f in res.files) and any(f.endswith("_episodes.png") for f in res.files)
    table = res.table.splitlines()
    assert sum(line.startswith("| gridworld_varibad+rnn | 2 | 768 |") for line in table) == 1
    assert "Probability of improvement" in res.table


@pytest.mark.ray
def test_status_lists_every_trial(killed_and_resumed, capsys):
    from experiments.status import main

    assert main([killed_and_resumed["path"], "--root", killed_and_resumed["root"]]) == 0
    out = capsys.readouterr().out
    assert "4 done (of 4 trials)" in out and out.count("768 / 768") == 4
