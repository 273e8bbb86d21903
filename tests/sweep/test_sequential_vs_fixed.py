"""benchmarks/sequential_vs_fixed.py: the fixed design built from an auto sweep's runs (each copied to the job of
its seed and group), the rest trained by a resume, and the two designs side by side (stand-in launcher)."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrenar_bench.aggregate.sequential_design import Design
from entrenar_bench.run.record import read_result
from entrenar_bench.sweep import sequential
from entrenar_bench.sweep.compose import expand_jobs
from entrenar_bench.sweep.sequential import read_round_plan
from tests.sweep.test_sequential_rounds import Launcher, compare

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import sequential_vs_fixed

    return sequential_vs_fixed


def test_the_fixed_design_reuses_every_auto_run_and_trains_only_the_rest(tmp_path, monkeypatch, bench, capsys):
    monkeypatch.setattr(sequential, "launch_multirun", auto_launcher := Launcher())
    auto = compare(tmp_path, Design(max_runs=6, min_runs=3), ("none", "kd")).sweep_dir
    fixed = tmp_path / "fixed"
    assert bench.prepare(auto, fixed) == len(auto_launcher.trained) < 12
    overrides = bench.fixed_overrides(read_round_plan(auto), 6)
    jobs, _ = expand_jobs(overrides)
    for folder in (p for p in fixed.iterdir() if p.is_dir()):
        record = read_result(folder)
        assert set(record["overrides"]) - {"+bench=compare"} <= set(jobs[int(folder.name)])

    with pytest.raises(SystemExit, match="not complete .*entrenar-bench compare --resume"):
        bench.table(auto, fixed)
    rest = Launcher()
    rest("compare", overrides, fixed)  # what `entrenar-bench compare --resume` runs
    assert not set(rest.trained) & set(auto_launcher.trained)
    assert len(rest.trained) + len(auto_launcher.trained) == 12
    bench.table(auto, fixed)
    out = capsys.readouterr().out
    assert "| kd vs none | better (look 1, 3 runs; efficacy) | better (p " in out
    assert "same verdicts: yes" in out and "| auto | 6 (50%) |" in out
