"""Fault injection on checkpoints: truncated, garbage and foreign files, NaN states, a full
disk and kills at chosen points inside the write. Afterwards the previous checkpoint is
intact and loads, nothing partial is left, and every skipped file is reported in one line."""
from __future__ import annotations

import errno
import os

import pytest
import torch

from utils import checkpoint as ck
from utils.checkpoint import (CHECKPOINT, CheckpointError, NonFiniteStateError, assert_finite_state, candidate_paths,
                              load_checkpoint, load_checkpoint_with_info, save_checkpoint)


def state(it: int, **extra) -> dict:
    return {"iter": it, "frames": 100 * it, "policy": {"w": torch.full((3, 2), float(it))}, "rng": [1, 2], **extra}


def files(run_dir) -> list[str]:
    return sorted(os.listdir(os.path.join(run_dir, "checkpoints")))


class Log(list):
    def __call__(self, msg: str) -> None:
        assert "\n" not in msg
        self.append(msg)


def test_round_trip_and_rotation_keeps_the_last_k(tmp_path):
    for it in range(1, 6):
        path = save_checkpoint(state(it), str(tmp_path), keep=3)
    assert path == os.path.join(tmp_path, "checkpoints", CHECKPOINT)
    assert files(tmp_path) == ["checkpoint.prev1.pt", "checkpoint.prev2.pt", "checkpoint.pt"]
    got, info = load_checkpoint_with_info(str(tmp_path))
    assert got["iter"] == 5 and torch.equal(got["policy"]["w"], torch.full((3, 2), 5.0))
    assert (info.iteration, info.frames) == (5, 500) and info.saved_at > 0
    assert [ck.read_checkpoint(p)[0]["iter"] for p in candidate_paths(str(tmp_path))] == [5, 4, 3]
    save_checkpoint(state(6), str(tmp_path), keep=1)  # a smaller keep drops the older files
    assert files(tmp_path) == ["checkpoint.pt"]


def _corrupt_newest(run_dir, how: str) -> None:
    path = os.path.join(run_dir, "checkpoints", CHECKPOINT)
    data = open(path, "rb").read()
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "empty":
        data = b""
    elif how == "garbage":
        data = os.urandom(2000)
    elif how == "flipped":
        data = bytearray(data)
        data[-100] ^= 0xFF
        data = bytes(data)
    elif how == "foreign_torch":
        torch.save({"model": torch.zeros(3)}, path)
        return
    elif how == "header_only":
        data = data[: data.index(b"\n", len(ck.MAGIC)) + 1]
    elif how == "bad_header":
        data = ck.MAGIC + b"{not json\n" + data
    with open(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("how, needle", [
    ("truncated", "truncated"), ("empty", "empty"), ("garbage", "no header"), ("flipped", "checksum mismatch"),
    ("foreign_torch", "not a training state"), ("header_only", "truncated"), ("bad_header", "damaged header"),
])
def test_a_damaged_newest_checkpoint_is_reported_and_the_previous_used(tmp_path, how, needle):
    save_checkpoint(state(1), str(tmp_path))
    save_checkpoint(state(2), str(tmp_path))
    _corrupt_newest(str(tmp_path), how)
    log = Log()
    got = load_checkpoint(str(tmp_path), log=log)
    assert got["iter"] == 1
    assert len(log) == 1 and needle in log[0] and "checkpoint.pt" in log[0] and "previous" in log[0]


def test_a_foreign_framework_file_with_our_header_but_a_foreign_dict_is_refused(tmp_path):
    save_checkpoint(state(1), str(tmp_path))
    save_checkpoint({"iter": 2, "frames": 0}, str(tmp_path))
    path = os.path.join(tmp_path, "checkpoints", CHECKPOINT)
    # a well-formed file whose payload is not a training state
    good = ck._serialise({"iter": 0, "frames": 0})
    foreign = ck._serialise({"weights": torch.ones(2)})
    assert good.startswith(ck.MAGIC) and foreign.startswith(ck.MAGIC)
    with open(path, "wb") as f:
        f.write(foreign)
    log = Log()
    assert load_checkpoint(str(tmp_path), log=log)["iter"] == 1
    assert "not a training state" in log[0]


def test_no_usable_checkpoint_is_one_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="nothing to resume"):
        load_checkpoint(str(tmp_path))
    save_checkpoint(state(1), str(tmp_path), keep=1)
    _corrupt_newest(str(tmp_path), "garbage")
    with pytest.raises(CheckpointError, match="no usable checkpoint in .*checkpoints: checkpoint.pt: not a checkpoint"):
        load_checkpoint(str(tmp_path), log=Log())


@pytest.mark.parametrize("bad, where", [
    ({"policy": {"w": torch.tensor([1.0, float("nan")])}}, "state['policy']['w']"),
    ({"opt": [{"exp_avg": torch.tensor([float("inf")])}]}, "state['opt'][0]['exp_avg']"),
    ({"stats": {"mean": float("-inf")}}, "state['stats']['mean']"),
])
def test_non_finite_state_is_never_saved(tmp_path, bad, where):
    save_checkpoint(state(1), str(tmp_path))
    before = files(tmp_path)
    with pytest.raises(NonFiniteStateError) as err:
        save_checkpoint(state(2, **bad), str(tmp_path))
    assert where in str(err.value) and "\n" not in str(err.value)
    assert files(tmp_path) == before and load_checkpoint(str(tmp_path), log=Log())["iter"] == 1


def test_finite_check_ignores_integer_tensors_and_accepts_finite_states():
    assert_finite_state({"rng": torch.zeros(5, dtype=torch.uint8), "x": [1.0, torch.ones(2)], "n": None})
    import numpy as np

    with pytest.raises(NonFiniteStateError, match=r"state\['np'\]"):
        assert_finite_state({"np": np.array([1.0, np.nan])})


def test_full_disk_leaves_no_partial_file_and_says_what_is_needed(tmp_path, monkeypatch):
    save_checkpoint(state(1), str(tmp_path))

    def full_disk(path, data):
        with open(path, "wb") as f:
            f.write(data[:10])  # a partial temp file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck, "_write_file", full_disk)
    with pytest.raises(CheckpointError) as err:
        save_checkpoint(state(2), str(tmp_path))
    msg = str(err.value)
    assert "\n" not in msg and "disk is full" in msg and os.path.join(str(tmp_path), "checkpoints") in msg
    assert "needs" in msg and "bytes" in msg
    assert files(tmp_path) == ["checkpoint.pt"]  # no checkpoint.pt.tmp
    assert load_checkpoint(str(tmp_path), log=Log())["iter"] == 1


def test_full_disk_on_a_real_write_call(tmp_path, monkeypatch):
    """ENOSPC raised by the file object's write itself (not by a replaced helper)."""
    save_checkpoint(state(1), str(tmp_path))
    import builtins

    real_open = builtins.open

    class FullFile:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(data[:5])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def fake_open(path, mode="r", *a, **k):
        f = real_open(path, mode, *a, **k)
        return FullFile(f) if str(path).endswith(".tmp") and "w" in mode else f

    monkeypatch.setattr(builtins, "open", fake_open)
    with pytest.raises(CheckpointError, match="disk is full"):
        save_checkpoint(state(2), str(tmp_path))
    monkeypatch.setattr(builtins, "open", real_open)
    assert files(tmp_path) == ["checkpoint.pt"]


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no except-OSError handler catches it."""


@pytest.mark.parametrize("point", ["write", "link", "rotate", "rename", "fsync_dir"])
def test_kill_inside_the_write_keeps_a_loadable_checkpoint(tmp_path, monkeypatch, point):
    run = str(tmp_path)
    save_checkpoint(state(1), run)
    save_checkpoint(state(2), run)

    def kill(*a, **k):
        raise Killed

    if point == "write":  # killed half-way through writing the temp file
        def half(path, data):
            with open(path, "wb") as f:
                f.write(data[: len(data) // 2])
            raise Killed
        monkeypatch.setattr(ck, "_write_file", half)
    elif point == "link":
        monkeypatch.setattr(os, "link", kill)
    elif point == "rotate":
        real_replace = os.replace
        monkeypatch.setattr(os, "replace", lambda a, b: kill() if "prev" in str(b) else real_replace(a, b))
    elif point == "rename":
        real_replace = os.replace
        monkeypatch.setattr(os, "replace", lambda a, b: kill() if str(b).endswith(CHECKPOINT) else real_replace(a, b))
    else:
        monkeypatch.setattr(ck, "_fsync_dir", kill)
    with pytest.raises(Killed):
        save_checkpoint(state(3), run)
    monkeypatch.undo()
    log = Log()
    got = load_checkpoint(run, log=log)
    assert got["iter"] == (3 if point == "fsync_dir" else 2)  # the newest complete one
    assert not log, log
    assert os.path.exists(os.path.join(run, "checkpoints", CHECKPOINT))
    # the next save after the "restart" works and cleans up
    save_checkpoint(state(4), run)
    assert load_checkpoint(run, log=log)["iter"] == 4
    assert not any(f.endswith(".tmp") for f in files(run))


def test_link_failure_falls_back_to_a_copy(tmp_path, monkeypatch):
    save_checkpoint(state(1), str(tmp_path))

    def no_links(*a, **k):
        raise OSError(errno.EPERM, "links not supported")

    monkeypatch.setattr(os, "link", no_links)
    save_checkpoint(state(2), str(tmp_path))
    assert [ck.read_checkpoint(p)[0]["iter"] for p in candidate_paths(str(tmp_path))] == [2, 1]


def test_every_file_damaged_in_turn_falls_back_further(tmp_path):
    for it in (1, 2, 3):
        save_checkpoint(state(it), str(tmp_path))
    folder = os.path.join(tmp_path, "checkpoints")
    for name in ("checkpoint.pt", "checkpoint.prev1.pt"):
        with open(os.path.join(folder, name), "r+b") as f:
            f.truncate(50)
    log = Log()
    assert load_checkpoint(str(tmp_path), log=log)["iter"] == 1
    assert len(log) == 2


def test_peek_info_reads_the_header_only(tmp_path):
    save_checkpoint(state(7), str(tmp_path))
    info = ck.peek_info(os.path.join(tmp_path, "checkpoints", CHECKPOINT))
    assert info.iteration == 7 and info.frames == 700
    assert ck.peek_info(os.path.join(tmp_path, "nope")) is None
    assert ck.has_checkpoint(str(tmp_path)) and not ck.has_checkpoint(str(tmp_path / "other"))


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 256 KiB filesystem (tmpfs); skipped where mounting is not allowed."""
    import shutil
    import subprocess

    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if not shutil.which("mount") or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                                                   capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield str(mnt)
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_a_really_full_disk(tiny_disk):
    save_checkpoint(state(1), tiny_disk)
    big = state(2, buffer=torch.ones(200_000))  # 800 kB: does not fit
    with pytest.raises(CheckpointError) as err:
        save_checkpoint(big, tiny_disk)
    msg = str(err.value)
    assert "disk is full" in msg and "needs 80" in msg and os.path.join(tiny_disk, "checkpoints") in msg
    assert files(tiny_disk) == ["checkpoint.pt"]
    assert load_checkpoint(tiny_disk, log=Log())["iter"] == 1


def test_a_legacy_checkpoint_without_header_loads_with_a_warning(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    torch.save(state(4), folder / CHECKPOINT)  # what the previous version wrote
    log = Log()
    got, info = load_checkpoint_with_info(str(tmp_path), log=log)
    assert got["iter"] == 4 and info.iteration == 4 and not info.verified
    assert len(log) == 1 and "no checksum" in log[0]
    save_checkpoint(state(5), str(tmp_path))  # the next save rotates it away normally
    assert load_checkpoint_with_info(str(tmp_path), log=log)[1].verified
