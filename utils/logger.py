"""Run directory, TensorBoard event file, progress.csv and the progress line.

Run dir: <results_log_dir>/logs_<EnvName>/<exp_label>_<seed>__<YYYY-MM-DD_HH-MM-SS>/
An existing dir is never reused: a suffix _2, _3, ... is added instead.

Resume consistency: every iteration is logged once after any sequence of kills and resumes.
``Logger(run_dir, resume=True, resume_iteration=k, resume_time=t)`` (k, t: iteration and
``saved_at`` of the checkpoint the run continues from, see ``utils.checkpoint.CheckpointInfo``)

* cuts progress.csv back to the rows with ``iteration <= k`` (and drops a row a kill cut
  short), rewriting it atomically;
* keeps one TensorBoard event file per run: the events of earlier files are merged into it
  (atomically), without those written after the checkpoint (``wall_time > t``), and new events
  are appended to it. Without ``t`` the ``saved_at`` of the checkpoint file of iteration k in
  ``<run_dir>/checkpoints`` is used; without either, nothing is dropped.

Events are written to the OS as they are logged (a kill -9 loses none), so everything logged
before a checkpoint is on disk when the checkpoint is.
"""
from __future__ import annotations

import csv
import datetime as dt
import glob
import json
import math
import os
import socket
import struct
import sys
import threading
import time

from tensorboardX.proto.event_pb2 import Event
from tensorboardX.proto.summary_pb2 import Summary
from tensorboardX.record_writer import masked_crc32c

EVENTS_PREFIX = "events.out.tfevents."


def new_run_dir(root: str, env_name: str, label: str, seed: int) -> str:
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    base = os.path.join(root, f"logs_{env_name}", f"{label}_{seed}__{stamp}")
    seps = {"/", "\\"} | {s for s in (os.sep, os.altsep) if s}
    parts = (f"logs_{env_name}", f"{label}_{seed}__{stamp}")
    if not root or any(".." in p or any(s in p for s in seps) for p in parts):
        raise ValueError(f"run dir {base!r} would not be inside the results dir {root!r}")
    path, k = base, 1
    while True:
        try:
            os.makedirs(path)  # fails if it exists: never overwrite a run
            return path
        except FileExistsError:
            k += 1
            path = f"{base}_{k}"


# ------------------------------------------------------------------ TensorBoard event file
def _record(data: bytes) -> bytes:
    """One TFRecord: length, masked CRC of the length, data, masked CRC of the data."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


def read_records(path: str) -> list[bytes]:
    """The complete records of an event file, in order; a record cut short by a kill (or any
    damage after it) ends the list. Event files are append-only, so damage is at the end: the
    length CRC of every record and the data CRC of the last one are checked."""
    with open(path, "rb") as f:
        blob = f.read()
    out, pos = [], 0
    while pos + 12 <= len(blob):
        header = blob[pos:pos + 8]
        if struct.unpack("<I", blob[pos + 8:pos + 12])[0] != masked_crc32c(header):
            break
        end = pos + 12 + struct.unpack("<Q", header)[0]
        if end + 4 > len(blob):
            break
        out.append(blob[pos + 12:end])
        pos = end + 4
    if out:
        last_end = pos - 4
        if struct.unpack("<I", blob[last_end:pos])[0] != masked_crc32c(out[-1]):
            out.pop()
    return out


def event_files(run_dir: str) -> list[str]:
    """TensorBoard event files directly in ``run_dir``, oldest first."""
    files = [p for p in glob.glob(os.path.join(run_dir, EVENTS_PREFIX + "*")) if not p.endswith(".tmp")]
    return sorted(files, key=lambda p: (_first_wall_time(p), p))


def _first_wall_time(path: str) -> float:
    try:
        recs = read_records(path)
        return Event.FromString(recs[0]).wall_time if recs else math.inf
    except (OSError, ValueError):
        return math.inf


class EventFile:
    """The run's one event file: scalars are appended and handed to the OS at once. On resume the
    run's existing event files are merged into it first, without events after ``keep_until``."""

    def __init__(self, run_dir: str, resume: bool = False, keep_until: float | None = None):
        os.makedirs(run_dir, exist_ok=True)
        self._lock = threading.Lock()
        self.dropped = 0
        existing = event_files(run_dir) if resume else []
        if existing:
            self.path = existing[0]
            self._merge(existing, keep_until)
            self._f = open(self.path, "ab")
        else:
            name = f"{EVENTS_PREFIX}{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
            self.path = os.path.join(run_dir, name)
            self._f = open(self.path, "ab")
            self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _merge(self, files: list[str], keep_until: float | None) -> None:
        kept, dropped, first = [], 0, True
        for path in files:
            for rec in read_records(path):
                try:
                    event = Event.FromString(rec)
                except Exception:  # noqa: BLE001  (protobuf DecodeError: a damaged record)
                    dropped += 1
                    continue
                if event.WhichOneof("what") == "file_version":
                    if not first:
                        continue  # one header record per file
                    first = False
                elif keep_until is not None and event.wall_time > keep_until:
                    dropped += 1
                    continue
                kept.append(rec)
        self.dropped = dropped
        if len(files) == 1 and not dropped and sum(len(r) + 16 for r in kept) == os.path.getsize(files[0]):
            return  # nothing to change
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            for rec in kept:
                f.write(_record(rec))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        for path in files[1:]:
            os.remove(path)

    def _write(self, event: Event) -> None:
        data = _record(event.SerializeToString())
        with self._lock:  # whole records, also when several threads log
            self._f.write(data)
            self._f.flush()

    def add_scalar(self, tag: str, value: float, step: int, walltime: float | None = None) -> None:
        summary = Summary(value=[Summary.Value(tag=tag, simple_value=float(value))])
        self._write(Event(wall_time=time.time() if walltime is None else walltime, step=int(step), summary=summary))

    def flush(self) -> None:
        with self._lock:
            if not self._f.closed:
                self._f.flush()
                os.fsync(self._f.fileno())

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._f.close()


def read_scalars(run_dir: str) -> list[tuple[str, int, float, float]]:
    """(tag, step, value, wall_time) of every scalar in the run's event files (tests, tools)."""
    out = []
    for path in event_files(run_dir):
        for rec in read_records(path):
            event = Event.FromString(rec)
            for val in event.summary.value:
                out.append((val.tag, event.step, val.simple_value, event.wall_time))
    return out


# ------------------------------------------------------------------ progress.csv
def _iteration_of(row: dict) -> float | None:
    try:
        return float(row.get("iteration"))
    except (TypeError, ValueError):
        return None


def _read_csv(path: str) -> tuple[list[str], list[dict], bool]:
    """(columns, complete rows, whether anything was dropped): rows with missing or extra fields
    and a last line without its newline (cut short by a kill) are dropped."""
    with open(path, newline="") as f:
        text = f.read()
    dropped = False
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        dropped = True
    reader = csv.DictReader(text.splitlines())
    columns = list(reader.fieldnames or [])
    rows = []
    for row in reader:
        if None in row or any(v is None for v in row.values()):
            dropped = True
            continue
        rows.append(row)
    return columns, rows, dropped


def _resume_time_from_checkpoint(run_dir: str, iteration: int) -> float | None:
    from utils.checkpoint import candidate_paths, peek_info

    for path in candidate_paths(run_dir):
        info = peek_info(path)
        if info is not None and info.iteration == iteration:
            return info.saved_at
    return None


class Logger:
    def __init__(self, run_dir: str, resume: bool = False, resume_iteration: int | None = None,
                 resume_time: float | None = None):
        self.run_dir = run_dir
        if resume and resume_time is None and resume_iteration is not None:
            resume_time = _resume_time_from_checkpoint(run_dir, resume_iteration)
        self.writer = EventFile(run_dir, resume=resume, keep_until=resume_time)
        self.csv_path = os.path.join(run_dir, "progress.csv")
        self.columns: list[str] = []
        self.rows: list[dict] = []
        if resume and os.path.exists(self.csv_path):
            self.columns, self.rows, changed = _read_csv(self.csv_path)
            if resume_iteration is not None:
                keep = [r for r in self.rows if (_iteration_of(r) is None or _iteration_of(r) <= resume_iteration)]
                changed |= len(keep) != len(self.rows)
                self.rows = keep
            if changed:
                self._rewrite_csv()
        self.pending: dict[str, float] = {}

    def add(self, tag: str, value, x: int) -> None:
        value = float(value)
        self.writer.add_scalar(tag, value, x)

    def record(self, key: str, value) -> None:
        """A column of the next progress.csv row."""
        self.pending[key] = float(value)

    def _rewrite_csv(self) -> None:
        tmp = self.csv_path + ".tmp"
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, self.columns)
            w.writeheader()
            w.writerows(self.rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.csv_path)

    def dump_row(self) -> None:
        if not self.pending:
            return
        row, self.pending = self.pending, {}
        new_cols = [k for k in row if k not in self.columns]
        self.rows.append(row)
        if new_cols:  # rewrite with the wider header (rare)
            self.columns += new_cols
            self._rewrite_csv()
        else:
            with open(self.csv_path, "a", newline="") as f:
                csv.DictWriter(f, self.columns).writerow(row)

    def flush(self) -> None:
        """Everything logged so far to disk (call before a checkpoint)."""
        self.writer.flush()

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


def save_json(obj, path: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)


class Progress:
    """Frames, fps, ETA and the latest returns on stderr: a redrawn status line on a
    terminal (at most 4x/s), a plain line every 60 s otherwise (nohup, CI, log files); the first
    line is written at the first update and the last one when all frames are done, either way."""

    def __init__(self, total_frames: int, enabled: bool = True, start_frames: int = 0):
        self.total, self.enabled = total_frames, enabled
        self.tty = sys.stderr.isatty()
        self.t0, self.f0 = time.time(), start_frames
        self.last_draw = 0.0  # the first line at once, also when stderr is piped
        self.info = ""
        self.undrawn: int | None = None  # frames of the latest update not drawn yet

    def fps(self, frames: int) -> float:
        return (frames - self.f0) / max(time.time() - self.t0, 1e-9)

    def update(self, frames: int, info: str | None = None) -> None:
        if info is not None:
            self.info = info
        now = time.time()
        if not self.enabled or (frames < self.total and now - self.last_draw < (0.25 if self.tty else 60.0)):
            self.undrawn = frames  # (drawn at close: a run that stops short of its frames ends with its state)
            return  # the last update (all frames done) always draws: a run's log ends at 100%
        self.draw(frames, now)

    def draw(self, frames: int, now: float) -> None:
        self.last_draw, self.undrawn = now, None
        frac = min(frames / max(self.total, 1), 1.0)
        fps = self.fps(frames)
        eta = (self.total - frames) / fps if fps > 0 else math.inf
        eta_s = f"{eta / 60:5.1f}m" if math.isfinite(eta) else "  ?"
        text = f"{frames:,}/{self.total:,} frames  {fps:,.0f} fps  eta {eta_s}  {self.info}"
        if self.tty:
            bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
            sys.stderr.write(f"\r[{bar}] {text}   ")
        else:
            sys.stderr.write(f"[{100 * frac:5.1f}%] {text}\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.undrawn is not None:  # the run's last state (its frames per iteration need
            self.draw(self.undrawn, time.time())       # not divide num_frames; a stop request ends it early)
        if self.enabled and self.tty:
            sys.stderr.write("\n")
