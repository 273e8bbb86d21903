"""The entrenar-bench sweep commands: bad input rejected up front, real small sweeps end to end."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FAST, read_results, outputs
from entrenar_bench.cli.main import COMMAND_MODULES, run_cli as cli


@pytest.mark.parametrize("argv, message", [
    (["temperature", "--step", "0"], "--step must be > 0"),
    (["temperature", "--step", "-1"], "--step must be > 0"),
    (["temperature", "--start", "5", "--end", "1"], "must not be below --start"),
    (["temperature", "--runs", "0"], "--runs"),
    (["alpha", "--end", "1.5"], "between 0 and 1"),
    (["compare", "--strategies", "kd,bogus"], "unknown strategy 'bogus'"),
    (["compare", "--format", "xml"], "invalid choice: 'xml'"),
    (["ablation", "--base", "does-not-exist.yaml"], "no such file"),
    (["ablation", "--components", "temperature,bogus"], "unknown component 'bogus'"),
    (["temperature", "--", "distill.alpha=1.5"], "distill.alpha must be between 0 and 1"),
    (["compare", "--", "data=nope"], "bad override"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_exit_2_and_runs_nothing(bench_home, capsys, argv, message):
    before = outputs(bench_home)
    assert cli(argv, "entrenar-bench", COMMAND_MODULES) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert outputs(bench_home) == before


def test_invalid_base_yaml_is_rejected(bench_home, tmp_path, capsys):
    base = tmp_path / "base.yaml"
    base.write_text("distill: [unclosed\n")
    assert cli(["ablation", "--base", str(base)], "entrenar-bench", COMMAND_MODULES) == 2
    assert "not valid YAML" in capsys.readouterr().err


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p])
def test_aggregate_of_missing_or_empty_dir_is_exit_2(tmp_path, capsys, make):
    assert cli(["aggregate", str(make(tmp_path))], "entrenar-bench", COMMAND_MODULES) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_help_for_each_command(capsys):
    for command in ("temperature", "alpha", "compare", "ablation", "aggregate"):
        with pytest.raises(SystemExit) as exit_:
            cli([command, "--help"], "entrenar-bench", COMMAND_MODULES)
        assert exit_.value.code == 0
    assert "--strategies" in capsys.readouterr().out


def test_temperature_sweep_json_and_aggregate(run_cli):
    result = run_cli("temperature", "--start", "1", "--end", "2", "--step", "1", "--runs", "2", "--format", "json",
                     "--", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)  # stdout holds only the JSON document
    assert doc["sweep_type"] == "temperature" and doc["range"] == {"start": 1.0, "end": 2.0, "step": 1.0}
    assert [r["temperature"] for r in doc["results"]] == [1.0, 2.0] and all(r["n"] == 2 for r in doc["results"])
    assert doc["best_temperature"] in (1.0, 2.0) and "significantly_better_than_runner_up" in doc["best"]
    assert doc["best"]["selected_by"] == "val_accuracy" and all("val_accuracy" in r for r in doc["results"])
    assert Path(doc["plot"]).is_file()
    agg = run_cli("aggregate", doc["sweep_dir"], "--format", "json")
    pairs = json.loads(agg.stdout)["pairs"]
    assert len(pairs) == 1 and {"t", "df", "p_value", "p_adjusted", "mean_diff", "ci95", "hedges_g"} <= set(pairs[0])
    text = run_cli("aggregate", doc["sweep_dir"])
    assert "Group" in text.stdout and "Statistical significance" in text.stdout


def test_compare_reports_measured_time_and_memory(run_cli):
    result = run_cli("compare", "--strategies", "kd,none", "--runs", "2", "--format", "json", "--", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    assert sorted(doc["strategies"]) == ["kd", "none"]
    assert all(r["time_s"] > 0 and r["memory_gb"] is not None and r["n"] == 2 for r in doc["results"])
    assert len(doc["pairs"]) == 1 and doc["pairs"][0]["p_adjusted"] is not None
    records = read_results(Path(doc["sweep_dir"]))
    assert "4/4 done, 0 failed" in result.stderr
    assert Path(doc["curves"]) == Path(doc["sweep_dir"]) / "curves.png" and Path(doc["curves"]).is_file()
    assert all((job / "metrics.csv").is_file() for job in Path(doc["sweep_dir"]).iterdir() if job.name.isdigit())
    mean_time = sum(r["time_s"] for r in records if r["distill"]["name"] == "kd") / 2
    assert next(r for r in doc["results"] if r["strategy"] == "kd")["time_s"] == pytest.approx(mean_time)


def test_ablation_rows_and_base_file(run_cli, tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("distill:\n  temperature: 2.0\n")
    result = run_cli("ablation", "--base", str(base), "--components", "temperature,attention_loss", "--runs", "1",
                     "--", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    for row in ("Full model (combined)", "without temperature scaling", "without attention loss",
                "without temperature scaling and attention loss", "baseline"):
        assert row in result.stdout
    sweep = Path(next(line.split("Sweep: ")[1] for line in result.stdout.splitlines() if line.startswith("Sweep: ")))
    records = read_results(sweep)
    assert len(records) == 4 and all(r["config"]["distill"]["temperature"] == 2.0 for r in records)
    assert all(r["config"]["distill"]["name"] == "combined" for r in records)


def test_partly_failing_sweep_reports_the_rest_and_lists_failures(run_cli):
    # an MLP student has no feature maps, so attention transfer fails for it; the baseline still runs
    result = run_cli("compare", "--strategies", "none,attention", "--runs", "1", "--format", "json",
                     "--", "student=mlp", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    assert [r["strategy"] for r in doc["results"]] == ["none"]
    assert len(doc["failures"]) == 1 and "feature maps" in doc["failures"][0]["error"]
    all_fail = run_cli("compare", "--strategies", "attention", "--runs", "1", "--", "student=mlp", *FAST)
    assert all_fail.returncode == 1 and "no run completed" in all_fail.stderr


def test_entry_points_start_without_the_training_and_report_stacks():
    """The CLI and the Hydra app (a parallel sweep's parent) load no torch, Lightning, pandas, scipy
    or matplotlib at import: each costs seconds; jobs and reports load them when they need them."""
    code = ("import sys, entrenar_bench.run.app, entrenar_bench.cli.main; "
            "print(','.join(m for m in ('torch', 'lightning', 'pandas', 'scipy', 'matplotlib') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


@pytest.mark.parametrize("sweep", ["compare", "temperature", "ablation"])
def test_planned_sweeps_give_every_point_its_first_seed_first(bench_home, sweep):
    from entrenar_bench.sweep import plan as bench
    from entrenar_bench.sweep.commands import sweep_command
    from entrenar_bench.sweep.compose import expand_jobs

    planned = {"compare": lambda: bench.compare_overrides(["kd", "mse", "combined"], 2),
               "temperature": lambda: sweep_command("temperature").plan({"start": 1.0, "end": 2.0, "step": 0.5}, 2),
               "ablation": lambda: bench.ablation_overrides(["temperature"], 2)}[sweep]()
    jobs, _ = expand_jobs([f"+bench={sweep}", *planned])
    seeds = [next(o for o in job if o.startswith("seed=")) for job in jobs]
    assert seeds == sorted(seeds) and len(set(seeds)) == 2 and len(jobs) > 2
