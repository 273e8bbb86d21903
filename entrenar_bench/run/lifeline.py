"""A sweep's Hydra process never outlives the ``entrenar-bench`` that started it.

The wrapper (``sweep/launch.py``) starts ``python -m entrenar_bench.run -m ...`` in a new session (its
own process group, which its joblib and submitit-local workers join) and names itself in
:data:`PARENT_ENV`. The child then

- asks Linux for a parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGTERM)``): a wrapper killed with
  ``-9`` still sends it SIGTERM, and it checks that the wrapper had not already gone before it asked;
- on SIGTERM, SIGINT or SIGHUP stops its whole process group (SIGTERM to the workers training jobs)
  and exits with 128 + the signal, as an unhandled signal would.

Plain ``python -m entrenar_bench.run`` (no :data:`PARENT_ENV`) is left as it is.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "ENTRENAR_BENCH_PARENT_PID"
PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _stop_group(signum: int, frame) -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if os.getpgrp() == os.getpid():  # a group of its own (the wrapper made it): its workers, never a shell's
        try:
            os.killpg(os.getpgrp(), signal.SIGTERM)  # workers may ignore SIGINT; this process ignores it now
        except OSError:
            pass
    os._exit(128 + signum)  # no clean-up that could wait on a worker


def follow_parent() -> None:
    """In a child started by the wrapper: die with it, and take the process group along when stopped."""
    parent = os.environ.pop(PARENT_ENV, None)
    if not parent:
        return
    for sig in STOP_SIGNALS:
        signal.signal(sig, _stop_group)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if str(os.getppid()) != parent:  # the wrapper died before the request above: nobody will signal
        _stop_group(signal.SIGTERM, None)
