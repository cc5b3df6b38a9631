"""Resume consistency of progress.csv and TensorBoard: after any sequence of kills (real
SIGKILLs of a child process) and resumes, every iteration is logged exactly once, in one
event file; rows written after the checkpoint are cut back. And the progress line."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter

import pytest

from tests.conftest import ROOT
from utils.checkpoint import load_checkpoint_with_info, save_checkpoint
from utils.logger import EVENTS_PREFIX, Logger, Progress, event_files, read_records, read_scalars

class Killed(BaseException):
    """An in-process stand-in for SIGKILL: nothing after it runs, the logger is not closed."""


def toy_loop(run: str, total: int, every: int, kill_at: int = -1, pass_time: bool = True, kill=None) -> None:
    """A toy training loop: per iteration a per-iteration and a per-frame scalar, a progress.csv
    row, a checkpoint every ``every`` iterations; ``kill()`` right after iteration ``kill_at`` is
    logged (before that iteration's checkpoint, if any). Resumes from the checkpoint if any."""
    start = 0
    if os.path.isdir(os.path.join(run, "checkpoints")):
        state, info = load_checkpoint_with_info(run, log=print)
        start = state["iter"]
        log = Logger(run, resume=True, resume_iteration=start, resume_time=info.saved_at if pass_time else None)
    else:
        log = Logger(run)
    for it in range(start + 1, total + 1):
        log.add("loss", it / 10, it)            # x = iteration
        log.add("bonus", it / 100, it * 32)     # x = frames
        log.record("iteration", it)
        log.record("frames", it * 32)
        log.dump_row()
        if it == kill_at:
            (kill or _raise_killed)()
        if it % every == 0:
            log.flush()
            save_checkpoint({"iter": it, "frames": it * 32}, run)
    log.close()


def _raise_killed():
    raise Killed


CHILD = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from tests.test_logger import toy_loop
    toy_loop({run!r}, {total}, {every}, {kill_at}, kill=lambda: os.kill(os.getpid(), signal.SIGKILL))
""")


def run_loop(run_dir, total, every, kill_at=-1, pass_time=True, real_kill=False):
    if real_kill:
        code = CHILD.format(root=ROOT, run=str(run_dir), total=total, every=every, kill_at=kill_at)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert out.returncode == (-signal.SIGKILL if kill_at > 0 else 0), out.stderr
        return
    try:
        toy_loop(str(run_dir), total, every, kill_at, pass_time)
    except Killed:
        assert kill_at > 0


def csv_iterations(run_dir) -> list[int]:
    with open(os.path.join(run_dir, "progress.csv"), newline="") as f:
        return [int(float(r["iteration"])) for r in csv.DictReader(f)]


def assert_logged_once(run_dir, total):
    assert csv_iterations(run_dir) == list(range(1, total + 1))
    scalars = read_scalars(str(run_dir))
    steps = {tag: [s for t, s, _, _ in scalars if t == tag] for tag in ("loss", "bonus")}
    assert steps["loss"] == list(range(1, total + 1)), Counter(steps["loss"]).most_common(3)
    assert steps["bonus"] == [32 * i for i in range(1, total + 1)]
    assert len(event_files(str(run_dir))) == 1


@pytest.mark.parametrize("kills, pass_time", [
    ((5, 8), True),       # killed after a row but before the checkpoint, twice
    ((4, 9), True),       # killed right after a checkpoint iteration's row, before its save
    ((3, 3, 7), False),   # the same point twice; resume time taken from the checkpoint header
])
def test_kill_resume_cycles_log_every_iteration_once(tmp_path, kills, pass_time):
    run, total, every = tmp_path / "run", 12, 2
    for k in kills:
        run_loop(run, total, every, kill_at=k, pass_time=pass_time)
        assert max(csv_iterations(run)) == k  # the row after the last checkpoint is on disk
    run_loop(run, total, every, pass_time=pass_time)
    assert_logged_once(run, total)


def test_real_sigkill_resume_cycles_log_every_iteration_once(tmp_path):
    run, total, every = tmp_path / "run", 10, 3
    run_loop(run, total, every, kill_at=5, real_kill=True)  # after iteration 5's row, checkpoint at 3
    assert max(csv_iterations(run)) == 5
    run_loop(run, total, every, real_kill=True)
    assert_logged_once(run, total)


def test_rows_beyond_the_checkpoint_are_cut_back(tmp_path):
    log = Logger(str(tmp_path))
    for it in range(1, 8):
        log.add("loss", it, it)
        log.record("iteration", it)
        log.record("ret", it * 2)
        log.dump_row()
        if it == 4:
            log.flush()
            save_checkpoint({"iter": it, "frames": 0}, str(tmp_path))
    log.close()
    state, info = load_checkpoint_with_info(str(tmp_path))
    log = Logger(str(tmp_path), resume=True, resume_iteration=state["iter"], resume_time=info.saved_at)
    assert csv_iterations(tmp_path) == [1, 2, 3, 4]
    assert [int(float(r["iteration"])) for r in log.rows] == [1, 2, 3, 4]
    assert [s for t, s, _, _ in read_scalars(str(tmp_path)) if t == "loss"] == [1, 2, 3, 4]
    log.close()
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_resume_without_iteration_keeps_the_old_behaviour(tmp_path):
    log = Logger(str(tmp_path))
    log.record("iteration", 1)
    log.dump_row()
    log.add("a", 1.0, 1)
    log.close()
    log = Logger(str(tmp_path), resume=True)
    log.record("iteration", 2)
    log.dump_row()
    log.add("a", 2.0, 2)
    log.close()
    assert csv_iterations(tmp_path) == [1, 2]
    assert [(t, s, v) for t, s, v, _ in read_scalars(str(tmp_path))] == [("a", 1, 1.0), ("a", 2, 2.0)]
    assert len(event_files(str(tmp_path))) == 1


def test_a_row_cut_short_by_a_kill_is_dropped(tmp_path):
    log = Logger(str(tmp_path))
    for it in (1, 2):
        log.record("iteration", it)
        log.record("ret", 1.5)
        log.dump_row()
    log.close()
    with open(tmp_path / "progress.csv", "a") as f:
        f.write("3.0,1.")  # half a row, no newline
    Logger(str(tmp_path), resume=True, resume_iteration=5).close()
    assert csv_iterations(tmp_path) == [1, 2]
    log = Logger(str(tmp_path), resume=True, resume_iteration=5)
    log.record("iteration", 3)
    log.record("ret", 2.0)
    log.dump_row()
    log.close()
    assert csv_iterations(tmp_path) == [1, 2, 3]


def test_a_record_cut_short_and_extra_event_files_are_merged_away(tmp_path):
    log = Logger(str(tmp_path))
    log.add("x", 1.0, 1)
    log.add("x", 2.0, 2)
    log.close()
    path = event_files(str(tmp_path))[0]
    with open(path, "ab") as f:
        f.write(b"\x10\x00\x00")  # a torn record header
    from tensorboardX import SummaryWriter  # a file from an older version of this logger

    w = SummaryWriter(str(tmp_path))
    w.add_scalar("x", 3.0, 3)
    w.close()
    assert len(event_files(str(tmp_path))) == 2
    Logger(str(tmp_path), resume=True).close()
    assert len(event_files(str(tmp_path))) == 1
    assert [(s, v) for t, s, v, _ in read_scalars(str(tmp_path)) if t == "x"] == [(1, 1.0), (2, 2.0), (3, 3.0)]
    files = [f for f in os.listdir(tmp_path) if f.startswith(EVENTS_PREFIX)]
    assert len(files) == 1 and len(read_records(os.path.join(tmp_path, files[0]))) == 4  # 1 header + 3


def test_progress_prints_its_first_line_at_once_when_piped(capsys):
    p = Progress(total_frames=1000, enabled=True)
    assert not p.tty  # pytest captures stderr: not a terminal
    p.update(10, "return 1.0")
    first = capsys.readouterr().err
    assert "10/1,000 frames" in first and first.endswith("\n")
    p.update(20)  # then once a minute
    assert capsys.readouterr().err == ""
    p.update(1000, "return 2.0")  # ... and the end of the run at once
    assert "[100.0%] 1,000/1,000 frames" in capsys.readouterr().err
    Progress(1000, enabled=False).update(10)
    assert capsys.readouterr().err == ""


def test_progress_draws_the_last_update_at_close_where_the_run_ends_short_of_its_frames(capsys):
    """A run whose frames per iteration do not divide num_frames (or that was stopped) ends
    below the total: its log still ends with its last state, drawn at close."""
    p = Progress(total_frames=60_000, enabled=True)
    p.update(960)
    p.update(59_520, "return 2.0")
    assert "59,520" not in capsys.readouterr().err  # rate-limited while running
    p.close()
    last = capsys.readouterr().err
    assert "[ 99.2%] 59,520/60,000 frames" in last and "return 2.0" in last
    p.close()  # once
    assert capsys.readouterr().err == ""


def test_new_run_dir_stays_inside_the_results_dir(tmp_path):
    from utils.logger import new_run_dir

    path = new_run_dir(str(tmp_path), "GridNavi", "label", 3)
    assert os.path.isdir(path) and os.path.dirname(os.path.dirname(path)) == str(tmp_path)
    assert new_run_dir(str(tmp_path), "GridNavi", "label", 3) != path  # never reused
    for env_name, label in (("GridNavi", "../../escape"), ("../..", "x"), ("GridNavi", "/abs")):
        with pytest.raises(ValueError, match="not be inside the results dir"):
            new_run_dir(str(tmp_path / "res"), env_name, label, 1)
    with pytest.raises(ValueError):
        new_run_dir("", "GridNavi", "x", 1)
    assert not (tmp_path / "res").exists()


def test_events_from_several_threads_stay_whole(tmp_path):
    import threading

    log = Logger(str(tmp_path))

    def work(k):
        for i in range(200):
            log.add(f"t{k}", i, i)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    scalars = read_scalars(str(tmp_path))
    assert len(scalars) == 800
    assert all(sorted(s for t, s, _, _ in scalars if t == f"t{k}") == list(range(200)) for k in range(4))
