"""RunLock with a real second process: a live holder is refused with its pid named; after the
holder is killed with SIGKILL its lock file is stale and taken over."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT
from utils.lock import LOCK_NAME, RunLock, RunLockedError

HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from utils.lock import RunLock
    lock = RunLock({run!r}).acquire()
    print("locked", flush=True)
    time.sleep(60)
""")


@pytest.fixture
def holder(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=ROOT, run=str(tmp_path))],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()


def test_a_live_holder_is_refused_with_its_pid(tmp_path, holder):
    with pytest.raises(RunLockedError) as err:
        RunLock(str(tmp_path)).acquire()
    msg = str(err.value)
    assert f"process {holder.pid}" in msg and str(tmp_path) in msg and "\n" not in msg


def test_a_killed_holder_leaves_a_stale_lock_that_is_taken_over(tmp_path, holder):
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    assert open(tmp_path / LOCK_NAME).read().strip() == str(holder.pid)  # the file is still there
    with RunLock(str(tmp_path)) as lock:
        assert lock.held and lock.took_over == holder.pid
        assert open(tmp_path / LOCK_NAME).read().strip() == str(os.getpid())
    assert not lock.held


def test_second_lock_in_the_same_process_is_refused_and_release_frees_it(tmp_path):
    with RunLock(str(tmp_path)) as first:
        assert first.took_over is None
        with pytest.raises(RunLockedError, match=f"process {os.getpid()}"):
            RunLock(str(tmp_path)).acquire()
        with pytest.raises(RunLockedError):
            first.acquire()  # acquiring twice
    with RunLock(str(tmp_path)) as again:  # released: free again, and not "stale"
        assert again.held and again.took_over is None


def test_lock_released_when_the_body_raises(tmp_path):
    with pytest.raises(ValueError):
        with RunLock(str(tmp_path)):
            raise ValueError("boom")
    with RunLock(str(tmp_path)) as lock:
        assert lock.held


def test_second_process_is_refused_while_we_hold_the_lock(tmp_path):
    probe = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        from utils.lock import RunLock, RunLockedError
        try:
            RunLock({str(tmp_path)!r}).acquire()
        except RunLockedError as err:
            print(err)
            sys.exit(7)
    """)
    with RunLock(str(tmp_path)):
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 7 and f"process {os.getpid()}" in out.stdout
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
