"""One process per run dir: ``with RunLock(run_dir): ...``.

The lock is an exclusive, non-blocking ``fcntl.flock`` on ``<run_dir>/.lock``; the holder's pid
is written into the file. The kernel drops a flock when its process dies (also on kill -9), so a
lock file left by a killed process is stale: it is taken over (``took_over`` says from which
pid). A live holder makes ``RunLock`` raise ``RunLockedError`` naming its pid.

Where ``fcntl`` is missing (Windows) the file is created with O_EXCL and a lock whose pid no
longer runs is treated as stale.
"""
from __future__ import annotations

import errno
import os

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows)
    fcntl = None

LOCK_NAME = ".lock"


class RunLockedError(RuntimeError):
    """Another live process holds the run dir's lock (the message names its pid)."""


def _read_pid(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
        return int(text.split()[0]) if text else None
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


class RunLock:
    """Exclusive lock of a run dir for the lifetime of a training process."""

    def __init__(self, run_dir: str):
        self.run_dir = run_dir
        self.path = os.path.join(run_dir, LOCK_NAME)
        self.fd: int | None = None
        self.took_over: int | None = None  # pid of a dead previous holder, if any

    def _locked_message(self, pid: int | None) -> str:
        who = f"process {pid}" if pid else "another process"
        return (f"{self.run_dir} is in use by {who} (lock file {self.path}); wait for it to finish or stop it "
                f"before resuming this run")

    def acquire(self) -> "RunLock":
        if self.fd is not None:
            raise RunLockedError(self._locked_message(os.getpid()))
        if fcntl is None:  # pragma: no cover
            return self._acquire_exclusive_create()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunLockedError(self._locked_message(_read_pid(self.path))) from None
            raise
        previous = _read_pid(self.path)
        if previous is not None and previous != os.getpid():
            self.took_over = previous  # its flock is gone: the process died without cleaning up
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self.fd = fd
        return self

    def _acquire_exclusive_create(self) -> "RunLock":  # pragma: no cover  (no fcntl)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                pid = _read_pid(self.path)
                if pid is not None and pid_alive(pid):
                    raise RunLockedError(self._locked_message(pid)) from None
                self.took_over = pid
                os.remove(self.path)
                continue
            os.write(fd, f"{os.getpid()}\n".encode())
            self.fd = fd
            return self
        raise RunLockedError(self._locked_message(_read_pid(self.path)))

    def release(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            os.ftruncate(fd, 0)  # an empty file: nobody holds it
        except OSError:
            pass
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        if fcntl is None:  # pragma: no cover
            try:
                os.remove(self.path)
            except OSError:
                pass

    @property
    def held(self) -> bool:
        return self.fd is not None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> bool:
        self.release()
        return False
