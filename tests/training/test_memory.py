"""Peak memory on CPU: growth of the process's resident set during the measured block."""

import mmap
import time

import pytest
import torch

from entrenar_bench.training import memory
from entrenar_bench.training.memory import GIB, PeakMemory

SIZE = 256 * 1024**2  # bytes


def _allocate_and_free(hold_s: float = 0.0) -> None:
    """SIZE bytes made resident, then given back: an anonymous map, never heap memory an earlier test freed
    (malloc would reuse those resident pages and the resident set would not grow)."""
    block = mmap.mmap(-1, SIZE)
    pages = torch.frombuffer(block, dtype=torch.uint8)
    pages.fill_(1)  # written: resident
    time.sleep(hold_s)
    del pages
    block.close()


def test_cpu_peak_catches_a_short_lived_allocation():
    if not memory._reset_peak_rss():
        pytest.skip("this system does not let a process reset its peak RSS")
    with PeakMemory(torch.device("cpu")) as peak:
        _allocate_and_free()
    assert peak.kind == "cpu_rss_growth"
    assert 0.9 * SIZE / GIB <= peak.peak_gb < 4 * SIZE / GIB


def test_cpu_peak_falls_back_to_sampling(monkeypatch):
    monkeypatch.setattr(memory, "_reset_peak_rss", lambda: False)
    with PeakMemory(torch.device("cpu"), interval_s=0.002) as peak:
        _allocate_and_free(hold_s=0.2)
    assert 0.9 * SIZE / GIB <= peak.peak_gb < 4 * SIZE / GIB
    with PeakMemory(torch.device("cpu")) as idle:
        pass
    assert idle.peak_gb < 0.9 * SIZE / GIB
