"""A sweep of the command line composes each job once (``hydra/sweeper=checked``: its jobs were checked before
launch); a multirun by hand keeps Hydra's basic sweeper, which composes the whole batch before the first job."""

from __future__ import annotations

import json

import yaml

from conftest import FAST

BAD_SECOND = ["-m", "seed=0", "distill=kd,no_such_strategy", *FAST]  # the second job's config cannot be composed


def test_a_command_line_sweep_runs_under_the_checked_sweeper(run_cli, tmp_path):
    proc = run_cli("compare", "--strategies", "kd", "--runs", "1", "--format", "json", "--", *FAST,
                   f"paths.output_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = next((tmp_path / "compare").glob("*/multirun.yaml")).parent
    assert yaml.safe_load((sweep / "multirun.yaml").read_text())["hydra"]["sweeper"]["_target_"] == \
        "hydra_plugins.entrenar_bench_sweeper.checked_sweeper.CheckedSweeper"
    assert json.loads((sweep / "0" / "result.json").read_text())["status"] == "completed"


def test_only_the_basic_sweeper_composes_the_batch_before_the_first_job(run_app, tmp_path):
    checked, basic = tmp_path / "checked", tmp_path / "basic"
    assert run_app(*BAD_SECOND, "hydra/sweeper=checked", f"hydra.sweep.dir={checked}").returncode != 0
    assert run_app(*BAD_SECOND, f"hydra.sweep.dir={basic}").returncode != 0
    assert json.loads((checked / "0" / "result.json").read_text())["status"] == "completed"
    assert not (basic / "0").exists()
