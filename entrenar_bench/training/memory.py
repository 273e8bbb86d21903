"""Peak memory of one training run.

On CUDA: ``torch.cuda.max_memory_allocated`` after a reset (workers that are reused by a
launcher would otherwise carry the previous job's peak). On CPU: the growth of the
process's resident set size over its value at the start. On Linux the kernel keeps the peak
(``VmHWM``) and lets the process reset it (``5 > /proc/self/clear_refs``), which is exact; where
that is not allowed, RSS is sampled every few milliseconds instead.
"""

from __future__ import annotations

import os
import threading

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
GIB = 1024**3


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:  # not Linux: the lifetime peak is the best the OS offers
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak_rss() -> bool:
    """Set the kernel's peak-RSS counter to the current RSS; False where the system does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    """The kernel's peak RSS (``VmHWM``) since the last reset."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


class PeakMemory:
    """Context manager; after exit ``peak_gb`` holds the peak and ``kind`` says how it was measured."""

    def __init__(self, device: torch.device, interval_s: float = 0.005):
        self.device = device
        self.interval_s = interval_s
        self.peak_gb = 0.0
        self.kind = "cuda_max_allocated" if device.type == "cuda" else "cpu_rss_growth"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._baseline = 0
        self._peak = 0

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._peak = max(self._peak, _rss_bytes())

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._baseline = self._peak = _rss_bytes()
            if not _reset_peak_rss():
                self._thread = threading.Thread(target=self._sample, daemon=True)
                self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak_gb = torch.cuda.max_memory_allocated(self.device) / GIB
        else:
            if self._thread is None:
                self._peak = _peak_rss_bytes()
            else:
                self._stop.set()
                self._thread.join()
                self._peak = max(self._peak, _rss_bytes())
            self.peak_gb = max(0, self._peak - self._baseline) / GIB
