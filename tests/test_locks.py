"""locks.py: one holder at a time, named to whoever is refused; released however the holder ends."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from entrenar_bench import locks


def hold_in_child(lock, seconds: float) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from entrenar_bench import locks
        with locks.hold(Path({str(lock)!r})):
            print("held", flush=True)
            time.sleep({seconds})
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_held_lock_is_refused_at_once_naming_its_holder(tmp_path):
    lock = tmp_path / ".sweep.lock"
    child = hold_in_child(lock, 30)
    try:
        start = time.perf_counter()
        with pytest.raises(locks.Busy) as busy:
            with locks.hold(lock):
                pass
        assert time.perf_counter() - start < 1
        assert f"pid {child.pid} on " in busy.value.holder and " since " in busy.value.holder
    finally:
        child.kill()
        child.wait()
    with locks.hold(lock):  # a killed holder leaves no stale lock
        assert locks.holder_path(lock).exists()
    assert not locks.holder_path(lock).exists()


def test_waiting_takes_the_lock_once_the_holder_is_done(tmp_path, caplog):
    lock = tmp_path / ".job.lock"
    child = hold_in_child(lock, 1.5)
    start = time.perf_counter()
    with locks.hold(lock, wait=True):
        assert time.perf_counter() - start > 0.5
    child.wait()
    assert "waiting for" in caplog.text


def test_a_lock_in_an_unwritable_place_is_an_os_error():
    with pytest.raises(OSError):
        with locks.hold(Path("/proc/entrenar-i12/.sweep.lock")):
            pass
