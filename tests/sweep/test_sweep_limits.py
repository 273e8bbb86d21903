"""Sweep size is counted before anything is expanded (``limits.max_runs``), and one process at a time
runs a sweep (its lock, re-entrant for a resume that locks, then launches)."""

from __future__ import annotations

import time

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from entrenar_bench.errors import UsageError
from entrenar_bench.sweep.compose import count_jobs, expand_jobs, max_runs, sweep_jobs
from entrenar_bench.sweep.supervise import hold_sweep, make_sweep_dir


def parse(*overrides):
    return OverridesParser.create().parse_overrides(list(overrides))


def test_jobs_are_counted_without_listing_ranges():
    assert count_jobs(parse("seed=0,1,2", "distill=kd,none", "train.epochs=2")) == 6
    assert count_jobs(parse("seed=range(0,10**12)".replace("10**12", "1000000000000"))) == 10**12
    assert count_jobs(parse("seed=0,1", "seed=0,1,2,3")) == 4  # a later override of a key replaces it
    assert count_jobs(parse("x=range(0.0,1.0,0.25)")) == 4
    assert count_jobs(parse("seed=range(0,99999999)", "seed=0,1")) == 99999999  # listed before it is replaced


def test_a_sweep_past_the_limit_is_refused_before_it_is_expanded(bench_home):
    start = time.perf_counter()
    with pytest.raises(UsageError, match="5000000000000 runs in one sweep is more than limits.max_runs=10000"):
        expand_jobs(["+bench=compare", "seed=range(0,1000000000000)"])
    assert time.perf_counter() - start < 10
    with pytest.raises(UsageError, match="limits.max_runs=3"):
        expand_jobs(["+bench=compare", "seed=0,1", "limits.max_runs=3"])
    assert len(expand_jobs(["+bench=compare", "seed=0,1", "limits.max_runs=10"])[0]) == 10
    assert max_runs(["limits.max_runs=7"]) == 7 and max_runs() == 10000
    with pytest.raises(Exception, match="step 0"):
        sweep_jobs({}, ["seed=range(0,5,0)"], 10)


def test_the_sweep_lock_is_reentrant_here_and_exclusive_elsewhere(tmp_path):
    import subprocess
    import sys

    assert make_sweep_dir(tmp_path / "new") and not make_sweep_dir(tmp_path / "new")
    with hold_sweep(tmp_path), hold_sweep(tmp_path):  # a resume locks, then launches
        code = f"from pathlib import Path; from entrenar_bench.sweep.supervise import hold_sweep\n" \
               f"with hold_sweep(Path({str(tmp_path)!r})): pass"
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert other.returncode == 1 and "is being run by pid" in other.stderr
    with hold_sweep(tmp_path):  # released
        pass
