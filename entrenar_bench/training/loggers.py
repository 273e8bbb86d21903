"""Lightning loggers built from the ``logger`` group, and what each is given beyond the per-epoch curve.

During training every logger receives what the module logs (``train/loss`` each epoch, ``val/<metric>`` at
each validation pass). Before training, MLflow and W&B get the run's parameters; after it (the record
written), each gets the final numbers in its own way: TensorBoard as the HParams view (parameters with the
final metrics), MLflow as metrics plus the run's files as artifacts, W&B as its run summary. The CSV logger's
final numbers are the record itself (``result.json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger

from entrenar_bench.training.logger_group import logger_class, logger_nodes

WRITES_FILES = ("CSVLogger", "TensorBoardLogger", "WandbLogger")  # given save_dir = the run directory
LIGHTNING_STATUS = {True: "success", False: "failed"}


def build_loggers(cfg: Mapping, run_dir: Path, arguments: Mapping[str, Mapping] | None = None) -> list[Logger]:
    """One logger per entry of ``cfg.logger``, writing its files in ``run_dir``; ``arguments``: more keyword
    arguments by entry name (an MLflow run's tags, its parent, its tracking URI)."""
    arguments = arguments or {}
    loggers = []
    for name, node in logger_nodes(cfg).items():
        given = {"save_dir": str(run_dir)} if logger_class(node) in WRITES_FILES else {}
        loggers.append(instantiate(node, **given, **arguments.get(name, {})))
    return loggers


def flat_params(config: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"distill.temperature": 4.0, ...}``: a nested config as one level of dotted keys (lists as they are)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            out.update(flat_params(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def start_logging(loggers: list[Logger], params: Mapping[str, Any]) -> None:
    """Before training: the parameters, where a logger keeps them apart from the metrics (MLflow, W&B), so
    a run that is stopped half-way still shows its configuration. TensorBoard's HParams entry is written once,
    with the final metrics; its ``hparams.yaml`` (written when fitting ends) gets the parameters now."""
    for logger in loggers:
        if isinstance(logger, (MLFlowLogger, WandbLogger)):
            logger.log_hyperparams(dict(params))
        elif isinstance(logger, TensorBoardLogger):
            logger.hparams.update(params)


def finish_logging(loggers: list[Logger], params: Mapping[str, Any], metrics: Mapping[str, float],
                   files: list[Path], completed: bool) -> None:
    """After the run: its final ``metrics`` and ``files`` to each logger, then each closed with the run's
    status (a logger Lightning closed after fitting is closed again: MLflow then records the true end)."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(dict(params), metrics=dict(metrics) or None)
        elif isinstance(logger, MLFlowLogger):
            logger.log_metrics(dict(metrics))
            for path in files:
                logger.experiment.log_artifact(logger.run_id, str(path))
        elif isinstance(logger, WandbLogger):
            logger.experiment.summary.update(dict(metrics))
        logger.finalize(LIGHTNING_STATUS[completed])
        if isinstance(logger, WandbLogger):
            logger.experiment.finish(exit_code=0 if completed else 1)
