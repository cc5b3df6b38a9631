"""Verified, rotated, atomic checkpoints.

Layout of ``<run_dir>/checkpoints/``::

    checkpoint.pt          the newest checkpoint (what ``--resume`` looks for)
    checkpoint.prev1.pt    the one before, ... up to ``checkpoint.prev<keep-1>.pt``

Each file is a small header followed by the ``torch.save`` payload::

    b"VARIBAD-CKPT\\n" + one JSON line {"format", "sha256", "size", "iteration", "frames", "saved_at"} + payload

``load_checkpoint`` verifies the header, the size and the SHA-256 of the payload of the newest
file; a corrupt, truncated or foreign file is reported in one line (``log``) and the previous
one is used. A plain ``torch.save`` file of a training state (written before checksums) is
loaded unverified, with a one-line warning. ``save_checkpoint`` refuses states with a NaN/inf tensor (``assert_finite_state``),
serialises in memory, writes a temp file (fsync), keeps the previous newest as ``prev1`` through
a hard link (``checkpoint.pt`` exists at every moment) and renames the temp file over
``checkpoint.pt``. Any ``OSError`` while writing (a full disk: ENOSPC) removes the temp file and
raises a one-line ``CheckpointError`` naming the folder and the bytes needed.

Loading unpickles the payload (``torch.load(weights_only=False)``): the checksum detects damage,
not a deliberately crafted file; only resume run dirs you trust.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

CHECKPOINT = "checkpoint.pt"
MAGIC = b"VARIBAD-CKPT\n"
FORMAT = 1
_MAX_HEADER = 4096
_REQUIRED_KEYS = ("iter", "frames")


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or no usable checkpoint could be read (one-line message)."""


class NonFiniteStateError(CheckpointError):
    """The state to save holds a NaN/inf value; the message names its key path."""


@dataclass(frozen=True)
class CheckpointInfo:
    """What the header of a verified checkpoint says."""

    path: str
    iteration: int | None
    frames: int | None
    saved_at: float
    verified: bool = True  # False: a legacy file without header (written before checksums), loaded as it is


# ------------------------------------------------------------------ paths
def checkpoint_dir(run_dir: str) -> str:
    return os.path.join(run_dir, "checkpoints")


def candidate_paths(run_dir: str, keep: int | None = None) -> list[str]:
    """Existing checkpoint files, newest first: checkpoint.pt, checkpoint.prev1.pt, ..."""
    folder = checkpoint_dir(run_dir)
    if not os.path.isdir(folder):
        return []
    prevs = []
    for name in os.listdir(folder):
        if name.startswith("checkpoint.prev") and name.endswith(".pt") and name[15:-3].isdigit():
            prevs.append((int(name[15:-3]), name))
    names = ([CHECKPOINT] if os.path.exists(os.path.join(folder, CHECKPOINT)) else []) + [n for _, n in sorted(prevs)]
    return [os.path.join(folder, n) for n in names[:keep]]


def _prev(folder: str, k: int) -> str:
    return os.path.join(folder, f"checkpoint.prev{k}.pt")


# ------------------------------------------------------------------ finite check
def assert_finite_state(state: Any, path: str = "state") -> None:
    """Raise ``NonFiniteStateError`` naming the first NaN/inf value (floating tensors, numpy
    arrays, Python floats) in nested dicts/lists/tuples, e.g. ``state['policy']['actor.weight']``."""
    bad = _first_non_finite(state, path)
    if bad is not None:
        where, what = bad
        raise NonFiniteStateError(f"refusing to save a checkpoint: {where} holds {what}; the previous "
                                  f"checkpoint is kept")


def _first_non_finite(obj: Any, path: str):
    if isinstance(obj, torch.Tensor):
        if (obj.is_floating_point() or obj.is_complex()) and obj.numel() and not bool(torch.isfinite(obj).all()):
            flat = obj.detach().reshape(-1)
            idx = int((~torch.isfinite(flat)).nonzero()[0])
            return path, f"{flat[idx].item()} (at flat index {idx} of a {tuple(obj.shape)} tensor)"
        return None
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (path, str(obj))
    if isinstance(obj, dict):
        for key, val in obj.items():
            hit = _first_non_finite(val, f"{path}[{key!r}]")
            if hit:
                return hit
        return None
    if isinstance(obj, (list, tuple)):
        for i, val in enumerate(obj):
            hit = _first_non_finite(val, f"{path}[{i}]")
            if hit:
                return hit
        return None
    try:  # numpy arrays and scalars, without importing numpy here
        import numpy as np

        if isinstance(obj, (np.ndarray, np.floating)) and np.issubdtype(np.asarray(obj).dtype, np.floating):
            arr = np.asarray(obj)
            if not np.isfinite(arr).all():
                return path, f"a non-finite value in a numpy array of shape {arr.shape}"
    except ImportError:  # pragma: no cover
        pass
    return None


# ------------------------------------------------------------------ save
def _serialise(state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    header = {"format": FORMAT, "sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload),
              "iteration": _int_or_none(state.get("iter")), "frames": _int_or_none(state.get("frames")),
              "saved_at": time.time()}
    return MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload


def _int_or_none(x) -> int | None:
    try:
        return int(x)
    except (TypeError, ValueError):
        return None


def _write_file(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover  (platforms without directory fds)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _space_error(folder: str, needed: int, err: OSError) -> CheckpointError:
    try:
        free = f", {shutil.disk_usage(folder).free:,} bytes free"
    except OSError:
        free = ""
    reason = "the disk is full" if err.errno in (errno.ENOSPC, errno.EDQUOT) else (err.strerror or str(err))
    return CheckpointError(f"cannot write a checkpoint to {folder}: {reason} (it needs {needed:,} bytes{free}); "
                           f"the previous checkpoint is kept")


def _rotate(folder: str, path: str, keep: int) -> None:
    """Shift prev<k> -> prev<k+1> (dropping the oldest) and keep the current newest as prev1,
    without ever removing ``checkpoint.pt`` (a hard link, or a copy where links fail)."""
    for k in range(keep - 1, 0, -1):
        src = _prev(folder, k)
        if not os.path.exists(src):
            continue
        if k + 1 >= keep:
            os.remove(src)
        else:
            os.replace(src, _prev(folder, k + 1))
    for k in range(keep, keep + 100):  # leftovers from a larger keep
        if os.path.exists(_prev(folder, k)):
            os.remove(_prev(folder, k))
    if keep > 1 and os.path.exists(path):
        link_tmp = _prev(folder, 1) + ".tmp"
        if os.path.exists(link_tmp):
            os.remove(link_tmp)
        try:
            os.link(path, link_tmp)
        except OSError:
            shutil.copyfile(path, link_tmp)
        os.replace(link_tmp, _prev(folder, 1))


def save_checkpoint(state: dict, run_dir: str, keep: int = 3) -> str:
    """Write ``state`` as the newest checkpoint of ``run_dir``, keeping the last ``keep`` files;
    return its path. Raises ``NonFiniteStateError`` (nothing written) for a NaN/inf value and
    ``CheckpointError`` when the write fails (no partial file is left)."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    assert_finite_state(state)
    data = _serialise(state)
    folder = checkpoint_dir(run_dir)
    path = os.path.join(folder, CHECKPOINT)
    tmp = path + ".tmp"
    try:
        os.makedirs(folder, exist_ok=True)
        _write_file(tmp, data)
        _rotate(folder, path, keep)
        os.replace(tmp, path)
        _fsync_dir(folder)
    except OSError as err:
        _remove_quietly(tmp)
        raise _space_error(folder, len(data), err) from None
    return path


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


# ------------------------------------------------------------------ load
def read_checkpoint(path: str) -> tuple[dict, CheckpointInfo]:
    """Read and verify one checkpoint file. Raises ``CheckpointError`` saying what is wrong."""
    name = os.path.basename(path)
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as err:
        raise CheckpointError(f"{name}: cannot be read ({err.strerror or err})") from None
    if not blob.startswith(MAGIC):
        if blob.startswith(b"PK\x03\x04"):  # a plain torch.save file: a legacy checkpoint or a foreign one
            state = _unpickle(name, blob)
            return state, CheckpointInfo(path, _int_or_none(state.get("iter")), _int_or_none(state.get("frames")),
                                         os.path.getmtime(path), verified=False)
        what = "empty" if not blob else "not a checkpoint of this framework (no header)"
        raise CheckpointError(f"{name}: {what}")
    end = blob.find(b"\n", len(MAGIC), len(MAGIC) + _MAX_HEADER)
    try:
        if end < 0:
            raise ValueError
        header = json.loads(blob[len(MAGIC):end])
        sha, size = header["sha256"], int(header["size"])
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"{name}: damaged header") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{name}: unknown checkpoint format {header.get('format')!r} (this code reads {FORMAT})")
    payload = blob[end + 1:]
    if len(payload) != size:
        raise CheckpointError(f"{name}: truncated or padded ({len(payload):,} of {size:,} payload bytes)")
    if hashlib.sha256(payload).hexdigest() != sha:
        raise CheckpointError(f"{name}: checksum mismatch (the file is corrupt)")
    state = _unpickle(name, payload)
    info = CheckpointInfo(path, header.get("iteration"), header.get("frames"), float(header.get("saved_at", 0.0)))
    return state, info


def _unpickle(name: str, payload: bytes) -> dict:
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001  (any unpickling failure means an unusable file)
        raise CheckpointError(f"{name}: cannot be unpickled ({type(err).__name__})") from None
    if not isinstance(state, dict) or any(k not in state for k in _REQUIRED_KEYS):
        raise CheckpointError(f"{name}: not a training state (a dict with {', '.join(_REQUIRED_KEYS)})")
    return state


def load_checkpoint_with_info(run_dir: str, log: Callable[[str], Any] | None = print,
                              max_iteration: int | None = None) -> tuple[dict, CheckpointInfo]:
    """The newest checkpoint that verifies, and its header. Each one skipped is reported in one
    line through ``log``. Raises ``CheckpointError`` when none is usable. ``max_iteration``: skip
    checkpoints of later iterations (the seeds of a ``--num_seeds`` run resume from one iteration)."""
    paths = candidate_paths(run_dir)
    if max_iteration is not None:
        later = [p for p in paths if _header_iteration(p) > max_iteration]
        if later and log is not None:
            log(f"{run_dir}: {len(later)} checkpoint(s) after iteration {max_iteration} not used")
        paths = [p for p in paths if p not in later]
    if not paths:
        raise CheckpointError(f"no checkpoint in {checkpoint_dir(run_dir)}: nothing to resume")
    problems = []
    for path in paths:
        try:
            state, info = read_checkpoint(path)
            if not info.verified and log is not None:
                log(f"warning: {os.path.basename(path)} has no checksum (written by an older version); loaded unverified")
            return state, info
        except CheckpointError as err:
            problems.append(str(err))
            if log is not None:
                rest = "trying the previous one" if path != paths[-1] else "no older checkpoint left"
                log(f"warning: skipping checkpoint {err}; {rest}")
    raise CheckpointError(f"no usable checkpoint in {checkpoint_dir(run_dir)}: {'; '.join(problems)}")


def _header_iteration(path: str) -> int:
    """The iteration a checkpoint's header names (-1 if it names none or cannot be read)."""
    info = peek_info(path)
    return info.iteration if info is not None and isinstance(info.iteration, int) else -1


def load_checkpoint(run_dir: str, log: Callable[[str], Any] | None = print) -> dict:
    """The state of the newest checkpoint that verifies (see ``load_checkpoint_with_info``)."""
    return load_checkpoint_with_info(run_dir, log)[0]


def peek_info(path: str) -> CheckpointInfo | None:
    """The header of one checkpoint file without verifying its payload (cheap); None if unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(MAGIC) + _MAX_HEADER)
        if not head.startswith(MAGIC):
            return None
        header = json.loads(head[len(MAGIC):head.index(b"\n", len(MAGIC))])
        return CheckpointInfo(path, header.get("iteration"), header.get("frames"), float(header.get("saved_at", 0.0)))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def has_checkpoint(run_dir: str) -> bool:
    """Whether ``run_dir`` holds any checkpoint file (verified only when it is loaded)."""
    return bool(candidate_paths(run_dir))
