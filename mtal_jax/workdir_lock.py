"""One process per run directory: an OS lock (``fcntl.flock``) on ``<workdir>/.lock``.

A second ``train.py`` on the same workdir would race the first for the same checkpoints
and JSON files; it is refused at once with the workdir and the holder's process id. The
lock is the kernel's, so it is released when the holder exits in any way (including
``kill -9``): a dead holder never blocks a later run, and no stale-lock cleanup exists.
The file itself stays (it holds the last holder's pid, as a hint only).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from collections.abc import Iterator

LOCK_NAME = ".lock"


class WorkdirLockedError(RuntimeError):
    """Another live process holds the run directory."""


def _holder(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or "unknown"
    except OSError:
        return "unknown"


_SHARED: dict[int, int] = {}  # a multi-process run's lock fd -> its shared lock on .lock


def _lock(path: str, kind: int, workdir: str) -> int:
    """Opens ``path`` and takes ``kind`` (``fcntl.LOCK_EX`` / ``LOCK_SH``) without waiting."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise
        raise WorkdirLockedError(
            f"{os.path.abspath(workdir)} is in use by another process ({_holder(path)}); "
            "wait for it to finish, stop it, or use another --workdir"
        ) from None
    return fd


def acquire(workdir: str, *, process: int = 0, processes: int = 1) -> int:
    """Locks ``workdir`` (created if missing) for this process; returns the lock's fd.

    Args:
      workdir: the run directory.
      process, processes: this process's index and the process count of a multi-process
        run: each process takes its own lock (``.lock.<process>``) and a shared lock on
        ``.lock``, so the processes of one run never block each other, while two runs
        do, whether each has one process (an exclusive lock on ``.lock``) or several.

    Raises:
      WorkdirLockedError: another process holds it (the message names the workdir and
        the holder's process id and host).
    """
    os.makedirs(workdir, exist_ok=True)
    main = os.path.join(workdir, LOCK_NAME)
    if processes == 1:
        fd = _lock(main, fcntl.LOCK_EX, workdir)
    else:
        shared = _lock(main, fcntl.LOCK_SH, workdir)
        try:
            fd = _lock(f"{main}.{process}", fcntl.LOCK_EX, workdir)
        except BaseException:
            os.close(shared)
            raise
        _SHARED[fd] = shared
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    return fd


def holder(workdir: str) -> str:
    """Who holds ``workdir``'s lock (``"pid N on HOST"``), or ``""`` when no live process
    does (or it has no lock file). Only a probe: the lock may change hands right after."""
    path = os.path.join(workdir, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return ""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise
        return _holder(path)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return ""
    finally:
        os.close(fd)


def release(fd: int) -> None:
    """Releases a lock taken by ``acquire``."""
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    if (shared := _SHARED.pop(fd, None)) is not None:
        fcntl.flock(shared, fcntl.LOCK_UN)
        os.close(shared)


@contextlib.contextmanager
def hold(workdir: str, *, process: int = 0, processes: int = 1) -> Iterator[None]:
    """Holds the lock of ``workdir`` while the block runs (arguments of ``acquire``)."""
    fd = acquire(workdir, process=process, processes=processes)
    try:
        yield
    finally:
        release(fd)
