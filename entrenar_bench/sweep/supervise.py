"""One writer per sweep, and a Hydra child that never outlives its wrapper.

- The sweep lock (``<sweep dir>/.sweep.lock``, :mod:`entrenar_bench.locks`) is held by whoever launches
  the sweep's jobs; a second launch or resume of the directory stops at once, naming the holder.
- The plan (``<sweep dir>/sweep.json``) records the task and the overrides the wrapper ran, before the
  child starts; resume reruns exactly these (``sweep/resume.py``).
- The child starts in a session of its own (one process group with its workers) and is told to die with
  the wrapper (:mod:`entrenar_bench.run.lifeline`); SIGTERM, SIGHUP and SIGINT reaching the wrapper are
  forwarded to that group, and whatever is left after :data:`GRACE_S` seconds is killed.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from entrenar_bench import __version__, locks
from entrenar_bench.errors import Interrupted, OutputError, UsageError
from entrenar_bench.files import write_json_atomic
from entrenar_bench.run.lifeline import PARENT_ENV, STOP_SIGNALS

SWEEP_LOCK = ".sweep.lock"
PLAN_FILE = "sweep.json"
GRACE_S = 5.0

_held: set[Path] = set()  # sweeps this process holds: a resume takes the lock, then launches


def make_sweep_dir(sweep_dir: Path) -> bool:
    """Create the sweep directory (True if it is new); OutputError naming it if that is impossible."""
    if sweep_dir.is_dir():
        return False
    try:
        sweep_dir.mkdir(parents=True)
    except FileExistsError:
        return False
    except OSError as e:
        raise OutputError(e.errno, e.strerror, str(sweep_dir)) from None
    return True


@contextmanager
def hold_sweep(sweep_dir: Path) -> Iterator[None]:
    """Hold the sweep's lock for the block (re-entrant in this process); UsageError at once if another
    process holds it, or if the directory cannot be written (a read-only sweep is aggregated, not run)."""
    key = sweep_dir.resolve()
    if key in _held:
        yield
        return
    with ExitStack() as stack:
        try:
            stack.enter_context(locks.hold(key / SWEEP_LOCK))
        except locks.Busy as e:
            raise UsageError(f"{sweep_dir} is being run by {e.holder}; wait for it to finish or stop it") from None
        except OSError as e:
            raise UsageError(f"{sweep_dir}: cannot write there ({e.strerror}); a sweep runs only where it can "
                             f"write (`entrenar-bench aggregate {sweep_dir}` only reads)") from None
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)


def record_plan(sweep_dir: Path, task_name: str, overrides: Sequence[str]) -> None:
    """Write ``sweep.json`` (task, overrides) unless the sweep already has one: the plan resume reruns."""
    path = sweep_dir / PLAN_FILE
    if not path.exists():
        write_json_atomic(path, {"task_name": task_name, "overrides": list(overrides), "version": __version__,
                                 "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})


def _signal_of(error: BaseException) -> int:
    if isinstance(error, Interrupted):
        return error.signum
    return signal.SIGINT if isinstance(error, KeyboardInterrupt) else signal.SIGTERM


def _raise_interrupted(signum: int, frame) -> None:
    raise Interrupted(signum, f"interrupted by {signal.Signals(signum).name}")


def _kill_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except OSError:  # the group is gone
        pass


def stop_group(child: subprocess.Popen, signum: int) -> None:
    """Forward ``signum`` to the child's process group; SIGKILL the group if it has not ended in GRACE_S."""
    _kill_group(child.pid, signum)
    try:
        child.wait(GRACE_S)
    except subprocess.TimeoutExpired:
        _kill_group(child.pid, signal.SIGKILL)
        child.wait()
    time.sleep(0.1)  # let the workers take the signal before the group is swept
    _kill_group(child.pid, signal.SIGKILL)


@contextmanager
def _handling(signals: Sequence[int], handler) -> Iterator[None]:
    """``handler`` for ``signals`` during the block (only the main thread may set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def supervised(command: Sequence[str], log: IO[bytes], sweep_dir: Path, task_name: str, created: bool = False,
               on_signal: Callable[[], None] | None = None) -> Iterator[subprocess.Popen]:
    """Start ``command`` as the sweep's child and yield it. A signal or an error in the block stops the
    child's whole process group before it propagates (a signal as :class:`Interrupted`, naming the resume,
    after ``on_signal``: jobs that are not this machine's processes, on a cluster, are stopped there)."""
    with _handling((signal.SIGTERM, signal.SIGHUP), _raise_interrupted):  # SIGINT raises KeyboardInterrupt
        try:
            child = subprocess.Popen(list(command), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     env={**os.environ, PARENT_ENV: str(os.getpid())}, start_new_session=True)
        except OSError as e:
            if created:
                shutil.rmtree(sweep_dir, ignore_errors=True)
            if e.errno == errno.E2BIG:
                raise UsageError("the sweep's overrides are too long for one command line; "
                                 "use fewer runs or points") from None
            raise
        try:
            yield child
        except BaseException as e:
            signum, signalled = _signal_of(e), isinstance(e, (Interrupted, KeyboardInterrupt))
            with _handling(STOP_SIGNALS, signal.SIG_IGN):
                stop_group(child, signum)
                if signalled and on_signal:
                    on_signal()
            if signalled:
                raise Interrupted(signum, f"interrupted by {signal.Signals(signum).name}: the sweep was stopped "
                                          f"(resume it: entrenar-bench {task_name.replace('_', '-')} --resume "
                                          f"{sweep_dir})") from None
            raise
        if child.poll() is None:  # the block left it running (it waits on jobs that will never end): stop it
            stop_group(child, signal.SIGTERM)
        else:
            _kill_group(child.pid, signal.SIGTERM)  # a worker left behind by a finished child
