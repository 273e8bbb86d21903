"""``--runs auto``'s bad input: one line on stderr, exit 2, nothing run."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import outputs
from entrenar_bench.cli.main import COMMAND_MODULES, run_cli as cli
from entrenar_bench.sweep.rounds import SEQUENTIAL_PLAN
from entrenar_bench.sweep.supervise import record_plan


@pytest.fixture
def fixed_sweep(tmp_path) -> Path:
    """A fixed --runs compare sweep (its plan only)."""
    record_plan(tmp_path, "compare", ["+bench=compare", "seed=0,1", "distill=kd,none"])
    return tmp_path


@pytest.mark.parametrize("argv, message", [
    (["compare", "--runs", "auto"], "--runs auto needs --max-runs N"),
    (["temperature", "--runs", "auto", "--min-runs", "5", "--max-runs", "4"], "--max-runs 4 is below --min-runs 5"),
    (["alpha", "--runs", "auto", "--max-runs", "4", "--mde", "0"], "--mde must be a positive number"),
    (["ablation", "--runs", "auto", "--max-runs", "4", "--mde", "-0.5"], "--mde must be a positive number"),
    (["compare", "--runs", "auto", "--max-runs", "6", "--min-runs", "1"], "--min-runs must be at least 2"),
    (["compare", "--runs", "3", "--max-runs", "6"], "--max-runs applies only with --runs auto"),
    (["compare", "--runs", "3", "--mde", "0.1"], "--mde applies only with --runs auto"),
    (["compare", "--runs", "auto", "--max-runs", "6", "--teachers", "2"], "--teachers K is not supported"),
    (["compare", "--runs", "auto", "--max-runs", "20000"], "limits.max_runs"),
    (["compare", "--runs", "sometimes"], "expected a positive integer"),
    (["compare", "--runs", "auto", "--max-runs", "4", "--spending", "haybittle"], "invalid choice"),
])
def test_bad_auto_input_is_one_line_exit_2_and_runs_nothing(bench_home, capsys, argv, message):
    before = outputs(bench_home)
    assert cli(argv, "entrenar-bench", COMMAND_MODULES) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert outputs(bench_home) == before


def test_auto_refuses_to_resume_a_fixed_n_sweep(bench_home, capsys, fixed_sweep):
    argv = ["compare", "--runs", "auto", "--resume", str(fixed_sweep)]
    assert cli(argv, "entrenar-bench", COMMAND_MODULES) == 2
    err = capsys.readouterr().err.strip()
    assert "not an auto sweep" in err and "\n" not in err
    assert not (fixed_sweep / SEQUENTIAL_PLAN).exists()


def test_resuming_an_auto_sweep_refuses_options_it_would_ignore(bench_home, capsys, tmp_path):
    (tmp_path / SEQUENTIAL_PLAN).write_text("{}")
    for argv, message in ((["--max-runs", "9"], "--max-runs would be ignored"),
                          (["--", "train.epochs=1"], "'train.epochs=1' would be ignored")):
        assert cli(["compare", "--resume", str(tmp_path), *argv], "entrenar-bench", COMMAND_MODULES) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err
