"""A job's experiment tracking: its Lightning loggers (``logger`` group), tagged, and under MLflow filed as a
child of its sweep's parent run.

A sweep is one MLflow parent run whose children are its jobs (the ``mlflow.parentRunId`` tag). The first job
of a sweep directory to get here creates the parent under a lock and records it in ``<sweep dir>/mlflow.json``
(tracking URI -> run id); the sweep's other jobs, a resumed sweep, SLURM and Ray jobs read it, however the
sweep was started, and aggregation logs the sweep's report to it (aggregate/tracking.py). A job records its
own run in ``<run dir>/mlflow.json``, so a rerun of the same configuration (after a failure or a pre-emption)
continues that run.

The default store is a SQLite database under ``ENTRENAR_BENCH_HOME`` (conf/logger/mlflow.yaml), with the
artifacts beside it in ``mlartifacts/``; ``logger.mlflow.tracking_uri`` names any other (a team's server).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from entrenar_bench.files import read_data, write_json_atomic
from entrenar_bench.run.record import RESULT_FILE
from entrenar_bench.training.logger_group import logger_class, logger_nodes

MLFLOW_FILE = "mlflow.json"  # in a sweep directory: its parent runs; in a run directory: the job's own run
SQLITE = "sqlite:///"
FINAL_NUMBERS = ("time_s", "peak_memory_gb", "samples_per_s")  # logged beside the record's metrics
RUN_FILES = (RESULT_FILE, "metrics.csv")  # a job's artifacts, with any plot (*.png) in its directory

log = logging.getLogger(__name__)


def store_uri(uri: str) -> str:
    """``uri`` with a local SQLite database's path made absolute (its folder made), so that every job and the
    aggregation, whatever their working directory, reach the same store."""
    if not uri.startswith(SQLITE):
        return uri
    path = Path(uri[len(SQLITE):]).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"{SQLITE}{path}"


def artifact_location(uri: str, experiment: str) -> str | None:
    """Artifacts of a local SQLite store go beside it (``mlartifacts/<experiment>``); a server keeps its own."""
    return str(Path(uri[len(SQLITE):]).parent / "mlartifacts" / experiment) if uri.startswith(SQLITE) else None


def recorded_runs(directory: Path) -> dict[str, str]:
    """``<directory>/mlflow.json``: tracking URI -> run id; empty where there is none or it cannot be read."""
    try:
        runs = json.loads(read_data(Path(directory) / MLFLOW_FILE))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in runs.items()} if isinstance(runs, dict) else {}


def record_run(directory: Path, uri: str, run_id: str) -> None:
    write_json_atomic(Path(directory) / MLFLOW_FILE, {**recorded_runs(directory), uri: run_id})


def sweep_directory() -> Path | None:
    """The multirun's sweep directory, seen from one of its jobs; None for a single run."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir).resolve()


def _existing(client, run_id: str | None, config_hash: str | None = None) -> str | None:
    """``run_id`` if the store still has that run (a store can be wiped between a run and its rerun) and,
    given ``config_hash``, it is a run of that configuration (a failed run's directory may be reused by another)."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id) if run_id else None
    except MlflowException:
        return None
    return run_id if run and config_hash in (None, run.data.tags.get("config_hash")) else None


def _experiment_id(client, name: str, uri: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None and found.lifecycle_stage != "deleted":
        return found.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location(uri, name))


def parent_run(sweep_dir: Path, uri: str, experiment: str, task: str) -> str:
    """The sweep's parent run in the store at ``uri``: created by the first job that asks, under a lock."""
    from mlflow import MlflowClient

    with FileLock(sweep_dir / f".{MLFLOW_FILE}.lock"):
        client = MlflowClient(uri)
        run_id = _existing(client, recorded_runs(sweep_dir).get(uri))
        if run_id is None:
            tags = {"mlflow.runName": f"{task} {sweep_dir.name}", "sweep_dir": str(sweep_dir), "task": task}
            run_id = client.create_run(_experiment_id(client, experiment, uri), tags=tags).info.run_id
            record_run(sweep_dir, uri, run_id)
        return run_id


def _mlflow_arguments(node: Mapping, cfg: DictConfig, run_dir: Path, record: Mapping[str, Any]) -> dict[str, Any]:
    """An MLflow logger's run: in the resolved store, tagged, a child of the sweep's parent run (in a sweep),
    or the run this job started before (a rerun). The experiment is made here, with its artifact location,
    before Lightning would make it (in a sweep under the parent's lock: parallel jobs would race)."""
    from mlflow import MlflowClient

    uri = store_uri(str(node["tracking_uri"]))
    experiment = str(node.get("experiment_name") or "lightning_logs")  # Lightning's default
    client = MlflowClient(uri)
    earlier = _existing(client, recorded_runs(run_dir).get(uri), record["config_hash"])
    if earlier:
        client.update_run(earlier, status="RUNNING")  # it ended FAILED (or was killed); it runs again
        return {"tracking_uri": uri, "run_id": earlier}
    tags = {**(node.get("tags") or {}), "config_hash": record["config_hash"], "seed": str(cfg.seed),
            "teacher_seed": str(cfg.teacher.seed), "run_dir": str(run_dir), "distill": str(cfg.distill.name)}
    sweep_dir = sweep_directory()
    if sweep_dir is not None:
        tags.update({"sweep_dir": str(sweep_dir),
                     "mlflow.parentRunId": parent_run(sweep_dir, uri, experiment, str(cfg.task_name))})
    else:
        _experiment_id(client, experiment, uri)
    return {"tracking_uri": uri, "tags": tags, "run_name": node.get("run_name") or run_name(record, run_dir)}


def run_name(record: Mapping[str, Any], run_dir: Path) -> str:
    """What a tracker calls a job: its overrides (``distill=kd seed=1 ...``), else its directory's name."""
    return (" ".join(record.get("overrides") or []) or run_dir.name)[:250]


def _wandb_arguments(node: Mapping, run_dir: Path, record: Mapping[str, Any]) -> dict[str, Any]:
    """A W&B run named as its job, in the group of its sweep (W&B's own grouping of runs)."""
    sweep_dir = sweep_directory()
    group = node.get("group") or (str(sweep_dir) if sweep_dir is not None else None)
    return {"name": node.get("name") or run_name(record, run_dir), "group": group}


def job_loggers(cfg: DictConfig, run_dir: Path, record: Mapping[str, Any], first_rank: bool = True) -> list:
    """The job's loggers, each writing into ``run_dir``; their runs started, with the resolved config as
    parameters (MLflow and W&B). ``record``: the job's record so far (config, hash, overrides). The other ranks
    of a run on several devices get the same loggers, unstarted (Lightning lets only rank zero log)."""
    from entrenar_bench.training.loggers import build_loggers, flat_params, start_logging

    if not first_rank:
        return build_loggers(cfg, run_dir)
    nodes = logger_nodes(cfg)
    arguments = {name: _mlflow_arguments(node, cfg, run_dir, record)
                 for name, node in nodes.items() if logger_class(node) == "MLFlowLogger"}
    arguments.update({name: _wandb_arguments(node, run_dir, record)
                      for name, node in nodes.items() if logger_class(node) == "WandbLogger"})
    loggers = build_loggers(cfg, run_dir, arguments)
    for name, logger in zip(nodes, loggers):
        if logger_class(nodes[name]) == "MLFlowLogger":
            record_run(run_dir, arguments[name]["tracking_uri"], logger.run_id)  # reading run_id starts the run
    start_logging(loggers, flat_params(record["config"]))
    return loggers


def finish_tracking(loggers: list, record: Mapping[str, Any], run_dir: Path) -> None:
    """After the record is written: the final numbers (test and validation metrics, time, memory) and the
    run's files to each logger, closed as completed or failed. A tracker that fails here is a warning in the
    job's log: the record stands."""
    if not loggers:
        return
    from entrenar_bench.training.loggers import finish_logging, flat_params

    numbers = {**(record.get("metrics") or {}), **{k: record.get(k) for k in FINAL_NUMBERS}}
    metrics = {k: float(v) for k, v in numbers.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    files = [run_dir / name for name in RUN_FILES if (run_dir / name).is_file()] + sorted(run_dir.glob("*.png"))
    try:
        finish_logging(loggers, flat_params(record["config"]), metrics, files, record.get("status") == "completed")
    except Exception as e:  # noqa: BLE001 (a tracking store's own errors: unreachable, locked, refused)
        log.warning("the final numbers did not reach every logger: %s: %s", type(e).__name__, e)
