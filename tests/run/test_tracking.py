"""The ``logger`` group: Lightning's loggers by ``_target_``, run-invariant, refused up front when a package is
missing; TensorBoard event files and an MLflow run per job, with the same metrics as the CSV curve alone."""

import csv
import json

import pytest

from conftest import FAST
from entrenar_bench.errors import ConfigError
from entrenar_bench.files import config_hash
from entrenar_bench.run.app import RunFailed, run
from entrenar_bench.run.checks import validate_config
from entrenar_bench.run.record import computed_config, read_result
from entrenar_bench.training import logger_group

EPOCHS = 3
RUN = ["distill=kd", *FAST, f"train.epochs={EPOCHS}"]


def _hash(cfg) -> str:
    from omegaconf import OmegaConf

    return config_hash(computed_config(OmegaConf.to_container(cfg, resolve=True)))


def test_the_logger_group_composes_one_or_several_and_is_run_invariant(compose_cfg):
    assert list(compose_cfg().logger) == ["csv"]  # the default: today's metrics.csv
    assert list(compose_cfg("logger=tensorboard").logger) == ["csv", "tensorboard"]  # the reports' curve kept
    assert list(compose_cfg("logger=[tensorboard,mlflow]").logger) == ["csv", "tensorboard", "mlflow"]
    assert "logger" not in compose_cfg("logger=[]")
    hashes = {_hash(compose_cfg(f"logger={name}")) for name in ("csv", "tensorboard", "mlflow", "[]")}
    assert len(hashes) == 1  # a logger never changes what a run computes


def test_a_missing_package_or_an_online_wandb_is_refused_naming_the_extra(compose_cfg, monkeypatch):
    monkeypatch.setattr(logger_group, "package_available", lambda name: name != "mlflow")
    with pytest.raises(ConfigError, match=r"^logger\.mlflow needs the mlflow package: "
                                          r"pip install -e '\.\[tracking\]'$"):
        validate_config(compose_cfg("logger=mlflow"))
    validate_config(compose_cfg("logger=tensorboard"))
    monkeypatch.setattr(logger_group, "package_available", lambda name: True)
    with pytest.raises(ConfigError, match="logger.wandb.offline must be true"):
        validate_config(compose_cfg("logger=wandb", "logger.wandb.offline=false"))


def _scalars(run_dir):
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    events = EventMultiplexer().AddRunsFromDirectory(str(run_dir))
    events.Reload()
    (name,) = events.Runs()
    return events, name


def test_tensorboard_and_mlflow_log_the_curve_and_final_metrics_without_changing_them(compose_cfg, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams import plugin_data_pb2

    plain = run(compose_cfg(*RUN), tmp_path / "csv")
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    tracked = run(compose_cfg(*RUN, "logger=[tensorboard,mlflow]", f"logger.mlflow.tracking_uri={uri}"),
                  tmp_path / "tracked")
    assert tracked["metrics"] == plain["metrics"] and tracked["config_hash"] == plain["config_hash"]
    assert (tmp_path / "csv" / "metrics.csv").read_text() == (tmp_path / "tracked" / "metrics.csv").read_text()

    events, name = _scalars(tmp_path / "tracked")
    losses = [e.value for e in events.Scalars(name, "train/loss")]
    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    assert losses == pytest.approx([float(r["train/loss"]) for r in rows]) and len(losses) == EPOCHS
    hparams = {tag: plugin_data_pb2.HParamsPluginData.FromString(raw)
               for tag, raw in events.PluginRunToTagToContent("hparams")[name].items()}
    shown = [m.name.tag for m in hparams["_hparams_/experiment"].experiment.metric_infos]
    assert {"accuracy", "val_accuracy", "loss"} <= set(shown)
    assert hparams["_hparams_/session_start_info"].session_start_info.hparams["distill.temperature"].number_value == 4.0
    assert events.Scalars(name, "accuracy")[-1].value == pytest.approx(plain["metrics"]["accuracy"])
    assert "distill.temperature: 4.0" in (tmp_path / "tracked" / "hparams.yaml").read_text()

    client = mlflow.MlflowClient(uri)
    (found,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert found.info.status == "FINISHED" and "mlflow.parentRunId" not in found.data.tags  # one run: no sweep
    assert found.data.metrics["accuracy"] == pytest.approx(plain["metrics"]["accuracy"])
    assert found.data.params["distill.name"] == "kd" and found.data.params["train.epochs"] == str(EPOCHS)
    assert found.data.tags["config_hash"] == plain["config_hash"] and found.data.tags["teacher_seed"] == "0"
    assert [m.step for m in client.get_metric_history(found.info.run_id, "train/loss")] == sorted(
        e.step for e in events.Scalars(name, "train/loss"))
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"result.json", "metrics.csv"} <= artifacts
    logged = client.download_artifacts(found.info.run_id, "result.json", str(tmp_path))
    assert json.loads(open(logged).read()) == read_result(tmp_path / "tracked")


def test_a_rerun_continues_its_mlflow_run_and_records_how_it_ended(compose_cfg, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    from entrenar_bench.run import job

    uri = f"sqlite:///{tmp_path / 'store.db'}"
    client = mlflow.MlflowClient(uri)
    tracked = ["distill=none", *FAST, "logger=mlflow", f"logger.mlflow.tracking_uri={uri}"]

    def runs():
        return {r.info.run_id: r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])}

    def pre_empted(*args):
        raise RuntimeError("pre-empted")

    with monkeypatch.context() as patch:
        patch.setattr(job, "train_student", pre_empted)
        with pytest.raises(RunFailed, match="pre-empted"):
            run(compose_cfg(*tracked), tmp_path / "job")
    ((first, failed),) = runs().items()
    assert (failed.info.status == "FAILED" and failed.data.tags["distill"] == "none"
            and "result.json" in {a.path for a in client.list_artifacts(first)})
    record = run(compose_cfg(*tracked), tmp_path / "job")  # the same configuration: the same MLflow run
    ((again, finished),) = runs().items()
    assert again == first and finished.info.status == "FINISHED"
    assert finished.data.metrics["accuracy"] == pytest.approx(record["metrics"]["accuracy"])

    with pytest.raises(RunFailed, match="NonFiniteLoss"):
        run(compose_cfg(*tracked, "train.lr=1e30"), tmp_path / "other")
    run(compose_cfg(*tracked), tmp_path / "other")  # another configuration in that directory: a run of its own
    statuses = sorted(r.info.status for r in runs().values())
    assert statuses == ["FAILED", "FINISHED", "FINISHED"]


def test_wandb_runs_offline_into_the_run_directory(compose_cfg, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    record = run(compose_cfg(*RUN, "logger=wandb"), tmp_path)
    (offline,) = (tmp_path / "wandb").glob("offline-run-*")
    assert record["status"] == "completed" and any(offline.glob("*.wandb"))
