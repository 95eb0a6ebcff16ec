"""One writer at a time per warehouse: an exclusive lock on a file beside it.

A second run waits up to a configured time, then gives up with a clear message; it never touches
the warehouse meanwhile. The lock dies with its process, so a killed run never leaves it stuck.
Readers (the catalog, `din query`) do not take it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from din.errors import WarehouseBusy

__all__ = ["WarehouseBusy", "lock_held_since", "writer_lock"]


@contextmanager
def writer_lock(path: Path, timeout_seconds: float, poll_seconds: float = 0.2) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    deadline = time.monotonic() + timeout_seconds
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _holder(path)
                    raise WarehouseBusy(
                        f"another run is writing to this warehouse{holder}; waited {timeout_seconds:g} s. "
                        "Try again when it has finished (see `din runs`), or raise lock_timeout_seconds."
                    ) from None
                time.sleep(poll_seconds)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return ""
    return f" (process {pid})" if pid else ""


def lock_held_since(path: Path) -> float | None:
    """When the live process holding the writer lock took it (seconds since the epoch), or None when no
    process holds it (a killed run's lock died with it). The holder writes its pid on taking the lock,
    so the file's modification time is that moment."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.fstat(fd).st_mtime
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
