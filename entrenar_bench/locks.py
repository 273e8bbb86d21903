"""Exclusive locks with a named holder: one writer per sweep, one trainer per job.

A lock is a ``filelock`` (``flock``) on ``<name>.lock``; the kernel releases it when its holder exits,
however it exits, so a killed holder never leaves a stale lock. Whoever holds it describes itself
(pid, host, command, start time) in ``<name>.lock.holder``, a sidecar written after the lock is taken
(a contender opening the lock file must not be able to truncate that description).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

from entrenar_bench.files import read_data, write_json_atomic

HOLDER_SUFFIX = ".holder"

log = logging.getLogger(__name__)


class Busy(Exception):
    """The lock is held by another process; ``holder`` describes it."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is held by {holder}")
        self.holder = holder


def holder_path(lock: Path) -> Path:
    return lock.with_name(lock.name + HOLDER_SUFFIX)


def describe_holder(lock: Path) -> str:
    """``pid 123 on host, since <time>: <command>`` from the sidecar, or a plain 'another process'."""
    try:
        info = json.loads(read_data(holder_path(lock), limit=1 << 16))
        return (f"pid {int(info['pid'])} on {info['host']} since {info['started']}: "
                f"{' '.join(str(part) for part in info['command'])[:200]}")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (it has not described itself)"


def _describe_self(lock: Path) -> None:
    write_json_atomic(holder_path(lock), {
        "pid": os.getpid(), "host": socket.gethostname(), "command": sys.argv,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })


@contextmanager
def hold(lock: Path, wait: bool = False) -> Iterator[None]:
    """Hold ``lock`` for the block. Taken at once or :class:`Busy`; with ``wait``, the holder is logged and
    the lock waited for. OSError if the lock file cannot be made (a read-only folder)."""
    os.close(os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666))  # the real error of an unwritable place
    file_lock = FileLock(lock, timeout=0)
    try:
        file_lock.acquire()
    except Timeout:
        holder = describe_holder(lock)
        if not wait:
            raise Busy(lock, holder) from None
        log.warning("waiting for %s, held by %s", lock.parent, holder)
        file_lock.acquire(timeout=-1)
    try:
        _describe_self(lock)
        yield
    finally:
        holder_path(lock).unlink(missing_ok=True)
        file_lock.release()
