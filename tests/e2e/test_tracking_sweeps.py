"""A sweep in the trackers users already look at: under MLflow one parent run holding the report's statistics
with a child run per job (the command's sweep, and a plain-Hydra sweep through ``aggregate DIR``); under
TensorBoard event files in every run directory; without the package, one line and nothing run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FAST, _env

COMPARE = ["compare", "--strategies", "none,kd", "--runs", "2", "--format", "json"]

HIDE_MLFLOW = """
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "mlflow":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Hide())
from entrenar_bench.cli.main import main
sys.argv[0] = "entrenar-bench"
main()
"""


def _runs(uri: str):
    mlflow = pytest.importorskip("mlflow")
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(search_all_experiments=True)
    is_child = runs["tags.mlflow.parentRunId"].notna()
    return runs[~is_child], runs[is_child]


def test_compare_under_mlflow_is_one_parent_run_with_a_child_per_job(run_cli, bench_home):
    pytest.importorskip("mlflow")
    result = run_cli(*COMPARE, "--", "logger=mlflow", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    parents, children = _runs(f"sqlite:///{bench_home / 'mlflow.db'}")  # the default store
    parents = parents[parents["tags.sweep_dir"] == doc["sweep_dir"]]  # the session's store may hold other sweeps
    assert len(parents) == 1
    parent = parents.iloc[0]
    children = children[children["tags.mlflow.parentRunId"] == parent.run_id]
    assert len(children) == 4 and set(children["tags.sweep_dir"]) == {doc["sweep_dir"]}
    assert sorted(children["params.distill.name"]) == ["kd", "kd", "none", "none"]
    assert sorted(children["tags.seed"]) == ["0", "0", "1", "1"] and children["metrics.accuracy"].between(0, 1).all()
    (pair,) = doc["pairs"]
    assert parent[f"metrics.pairs/{pair['a']} vs {pair['b']}/p_adjusted"] == pytest.approx(pair["p_adjusted"])
    assert parent["tags.best"] == doc["best"]["strategy"] and parent["status"] == "FINISHED"
    for strategy in ("kd", "none"):
        mean = next(r["accuracy"] for r in doc["results"] if r["strategy"] == strategy)
        assert parent[f"metrics.accuracy/{strategy}"] == pytest.approx(mean)


def test_a_plain_hydra_sweep_gets_its_parent_run_report_from_aggregate(run_app, run_cli, tmp_path):
    pytest.importorskip("mlflow")
    uri = f"sqlite:///{tmp_path / 'team.db'}"  # any tracking URI the user gives
    sweep = tmp_path / "sweep"
    done = run_app("-m", "distill=none", "seed=0,1", "train.lr=3e-3,1e-2", *FAST, "logger=mlflow",
                   f"logger.mlflow.tracking_uri={uri}", f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stderr[-3000:]
    parents, children = _runs(uri)
    assert len(parents) == 1 and len(children) == 4 and parents.iloc[0]["status"] == "RUNNING"  # until aggregated
    result = run_cli("aggregate", str(sweep), "--format", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    (pair,) = json.loads(result.stdout)["pairs"]
    parents, _ = _runs(uri)
    parent = parents.iloc[0]
    assert parent[f"metrics.pairs/{pair['a']} vs {pair['b']}/p_value"] == pytest.approx(pair["p_value"])
    assert parent["status"] == "FINISHED"
    from mlflow import MlflowClient

    artifacts = {a.path for a in MlflowClient(uri).list_artifacts(parent.run_id)}
    assert {"report.json", "report.txt", "report_table.json", "groups.png"} <= artifacts


def test_compare_under_tensorboard_leaves_event_files_with_the_training_loss(run_cli):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = run_cli(*COMPARE, "--", "logger=tensorboard", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = [p for p in Path(json.loads(result.stdout)["sweep_dir"]).iterdir() if p.name.isdigit()]
    assert len(jobs) == 4
    for job in jobs:
        events = EventAccumulator(str(job))
        events.Reload()
        assert len(events.Scalars("train/loss")) == 2  # one point an epoch
        assert (job / "metrics.csv").is_file()  # the report's curves still have theirs


def test_a_logger_whose_package_is_missing_is_one_line_and_nothing_runs(bench_home):
    before = sorted((bench_home / "outputs").rglob("*")) if (bench_home / "outputs").exists() else []
    proc = subprocess.run([sys.executable, "-c", HIDE_MLFLOW, *COMPARE, "--", "logger=mlflow"], capture_output=True,
                          text=True, env=_env(bench_home), cwd=bench_home, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "entrenar-bench: error: logger.mlflow needs the mlflow package: pip install -e '.[tracking]'"]
    assert (sorted((bench_home / "outputs").rglob("*")) if (bench_home / "outputs").exists() else []) == before
