"""``cost-performance`` and ``recommend``: bad input rejected up front; small real studies end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import FAST, read_results, outputs

from entrenar_bench.cli.main import COMMAND_MODULES
from entrenar_bench.cli.main import run_cli as cli
from entrenar_bench.cost.model import CostModel, measured_factor
from entrenar_bench.cost.analysis import dominates

STUDY_FAST = [*FAST, "finetune.base.epochs=2"]
SMALL = "- name: LoRA r=2\n  overrides: [finetune=lora, finetune.r=2]\n- name: Full\n  overrides: [finetune=full]\n"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "bad.yaml").write_text("- name: x\n  overrides: [finetune=lora\n")
    (tmp_path / "shape.yaml").write_text("name: x\n")
    (tmp_path / "unknown.yaml").write_text("- name: typo\n  overrides: [finetune=lora, finetune.rank=8]\n")
    (tmp_path / "empty").mkdir()
    job = tmp_path / "other" / "0"
    job.mkdir(parents=True)
    (job / "result.json").write_text(json.dumps({"status": "completed", "seed": 0, "metrics": {"accuracy": 0.9},
                                                 "time_s": 1.0, "config": {"distill": {"name": "kd"}}}))
    return tmp_path


@pytest.mark.parametrize("argv, message", [
    (["recommend", "--max-cost", "-5"], "--max-cost must be >= 0, got -5"),
    (["recommend", "--max-time", "soon"], "argument --max-time: expected a number, got 'soon'"),
    (["recommend", "--max-memory", "nan"], "--max-memory: expected a finite number, got 'nan'"),
    (["recommend", "--min-accuracy", "1.5"], "--min-accuracy must be between 0 and 1, got 1.5"),
    (["recommend", "--gpu", "h9000"], "unknown GPU 'h9000'; known: a100-80gb, custom, t4, v100"),
    (["cost-performance", "--gpu", "h9000"], "unknown GPU 'h9000'; known: a100-80gb, custom, t4, v100"),
    (["cost-performance", "--gpu", "custom"], "set pricing.cost_per_hour"),
    (["cost-performance", "--", "pricing.cost_per_hour=-1"], "pricing.cost_per_hour must be > 0"),
    (["cost-performance", "--objectives", "cost,speed"], "objectives must be two or more of"),
    (["cost-performance", "--runs", "0"], "--runs"),
    (["cost-performance", "--configs", "{tmp}/missing.yaml"], "missing.yaml: no such file"),
    (["cost-performance", "--configs", "{tmp}/bad.yaml"], "not valid YAML"),
    (["cost-performance", "--configs", "{tmp}/shape.yaml"], "expected a list of {name: ..., overrides: [...]}"),
    (["cost-performance", "--configs", "{tmp}/unknown.yaml"], "configuration 'typo': bad override: Could not override"),
    (["cost-performance", "--", "data=nope"], "bad override"),
    (["cost-performance", "--", "train.epochs=0"], "train.epochs must be >= 1"),
    (["recommend", "--from", "{tmp}/empty"], "no runs found"),
    (["recommend", "--from", "{tmp}/other"], "no cost-performance runs"),
    (["cost-performance", "--from", "{tmp}/nowhere"], "no such directory"),
    (["cost-performance", "--artifact", "{tmp}/missing.yaml"], "no such artifact"),
])
def test_bad_input_is_one_line_exit_2_and_runs_nothing(bench_home, files, capsys, argv, message):
    before = outputs(bench_home)
    assert cli([a.replace("{tmp}", str(files)) for a in argv], "entrenar-bench", COMMAND_MODULES) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert outputs(bench_home) == before


def test_help(capsys):
    for command in ("cost-performance", "recommend"):
        with pytest.raises(SystemExit) as exit_:
            cli([command, "--help"], "entrenar-bench", COMMAND_MODULES)
        assert exit_.value.code == 0
    assert "--max-memory" in capsys.readouterr().out


def _check_priced(doc: dict, records: list[dict]) -> None:
    """Every cost is the stated formula on the measured hours; Pareto flags and winner by definition."""
    pricing = CostModel.t4()
    for row in doc["results"]:
        runs = [r for r in records if r["status"] == "completed" and r["config"]["configuration"] == row["config"]]
        hours = sum(r["time_s"] for r in runs) / len(runs) / 3600
        factor, assumed = measured_factor(runs[0]["device"])
        assert row["n"] == len(runs) and row["measured_hours"] == pytest.approx(hours)
        assert row["hours"] == pytest.approx(hours * factor / pricing.performance_factor)
        assert row["cost"] == pytest.approx(row["hours"] * pricing.cost_per_hour) and row["factor_assumed"] == assumed
        assert row["accuracy"] == pytest.approx(sum(r["metrics"]["accuracy"] for r in runs) / len(runs))
        assert row["memory_gb"] == pytest.approx(max(r["peak_memory_gb"] for r in runs))
        others = [(o["cost"], o["accuracy"]) for o in doc["results"]]
        assert row["pareto"] == (not any(dominates(o, (row["cost"], row["accuracy"]), (False, True)) for o in others))
    assert doc["pareto_count"] == sum(r["pareto"] for r in doc["results"])
    best = max(doc["results"], key=lambda r: r["accuracy"] / r["cost"])
    assert doc["cost_efficiency_winner"]["config"] == best["config"]


@pytest.mark.slow
def test_cost_performance_then_recommend(run_cli, tmp_path):
    configs, artifact = tmp_path / "configs.yaml", tmp_path / "artifact.yaml"
    configs.write_text(SMALL)
    assert run_cli("research", "init", "--id", "cost", "--title", "Cost", "--type", "dataset", "-o",
                   str(artifact)).returncode == 0
    result = run_cli("cost-performance", "--configs", str(configs), "--runs", "2", "--gpu", "t4", "--format", "json",
                     "--artifact", str(artifact), "--", *STUDY_FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    sweep = Path(doc["sweep_dir"])
    assert [r["config"] for r in doc["results"]] == ["LoRA r=2", "Full"]
    assert doc["results"][0]["trainable_params"] < doc["results"][1]["trainable_params"]
    assert "x factor(measured device) / 0.3" in doc["pricing"]["formula"]
    assert "assumption" in doc["pricing"]["assumption"]            # measured on a CPU here
    assert Path(doc["plot"]) == sweep / "pareto.png" and Path(doc["plot"]).is_file()
    _check_priced(doc, read_results(sweep))
    assert [Path(link["dir"]) for link in yaml.safe_load(artifact.read_text())["sweeps"]] == [sweep.resolve()]
    assert sorted(p.name for p in (sweep / "configurations" / "cost_config").iterdir()) == \
        ["sweep_full.yaml", "sweep_lora_r_2.yaml"]

    text = run_cli("cost-performance", "--from", str(sweep), "--objectives", "cost,accuracy,memory")
    assert text.returncode == 0 and "Cost-Performance Analysis (A100-80GB @ $3.00/hr)" in text.stdout
    assert "Pareto Frontier:" in text.stdout and "Cost efficiency winner:" in text.stdout

    results = sorted(doc["results"], key=lambda r: (-r["accuracy"], r["cost"]))
    top, other = results
    limit = max(r["cost"] for r in doc["results"]) * 2
    rec = run_cli("recommend", "--from", str(sweep), "--max-cost", str(limit), "--min-accuracy", "0.1", "--gpu", "t4",
                  "--format", "json")
    assert rec.returncode == 0, rec.stderr[-2000:]
    rdoc = json.loads(rec.stdout)
    assert rdoc["recommended"]["config"] == top["config"] and rdoc["rationale"]
    squeezed = run_cli("recommend", "--from", str(sweep), "--max-cost", str(other["cost"] * 1.0001), "--gpu", "t4",
                       "--format", "json")
    cheapest = min(doc["results"], key=lambda r: r["cost"])
    if top["cost"] > other["cost"]:  # only the cheaper one fits the budget
        assert json.loads(squeezed.stdout)["recommended"]["config"] == cheapest["config"]

    impossible = run_cli("recommend", "--from", str(sweep), "--min-accuracy", "1.0", "--max-cost", "0")
    assert impossible.returncode == 1
    assert "No configuration meets every constraint" in impossible.stdout and "Nearest:" in impossible.stdout
    reasons = [line for line in impossible.stdout.splitlines() if line.startswith("  - ")]
    assert len(reasons) == 2 and all("< min accuracy 1" in r and "> max cost $0" in r for r in reasons)

    latest = run_cli("recommend", "--format", "json")                # no --from: the latest cost-performance sweep
    assert latest.returncode == 0 and json.loads(latest.stdout)["source"]["sweep_dir"] == str(sweep)


@pytest.mark.slow
def test_recommend_runs_the_default_study_when_there_is_none(tmp_path):
    env = {**os.environ, "ENTRENAR_BENCH_HOME": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-m", "entrenar_bench.cli.main", "recommend", "--runs", "1",
                             "--format", "json", "--", *STUDY_FAST], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "running the default study first" in result.stderr
    doc = json.loads(result.stdout)
    assert [c["config"] for c in doc["candidates"]] == ["LoRA r=8", "LoRA r=16", "LoRA r=32", "LoRA r=64",
                                                          "Full fine-tune"]
    assert [c["rank"] for c in doc["candidates"]] == [8, 16, 32, 64, None]
    best = max(doc["candidates"], key=lambda c: (c["accuracy"], -c["cost"]))
    assert doc["recommended"]["config"] == best["config"]
