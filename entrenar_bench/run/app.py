"""The Hydra app: one job is one distillation run, recorded in ``result.json``.

    python -m entrenar_bench.run                                   # kd on the embedded digits
    python -m entrenar_bench.run -m distill=none,kd seed=0,1,2     # a sweep

``run(cfg, run_dir)`` does the work and is what tests call; ``main`` is the thin entry.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf

from entrenar_bench import __version__, locks
from entrenar_bench.run import placement, schema  # noqa: F401  (register the launcher resolvers and the schemas)
from entrenar_bench.run.ablation import FULL, apply_ablation, parse_ablate
from entrenar_bench.distill import feature_terms
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.errors import ConfigError
from entrenar_bench.files import CONF_DIR, config_hash
from entrenar_bench.models.quiet import quiet_progress_bars
from entrenar_bench.run.baseline import student_alone
from entrenar_bench.run.checks import validate_config
from entrenar_bench.run.placement import first_rank
from entrenar_bench.run.tracking import finish_tracking, job_loggers
from entrenar_bench.run.record import (
    COMPLETED, FAILED, CorruptRecord, checkpoint_path, computed_config, read_result, remove_checkpoints, write_result,
)

log = logging.getLogger(__name__)

JOB_LOCK = ".job.lock"


class RunFailed(CompactHydraException):
    """Training raised or diverged; the failure is recorded in result.json."""


def distill_settings(cfg: DictConfig) -> DistillSettings:
    """The strategy's settings, with the user's feature terms of the root ``terms`` node (checked and imported:
    ``distill/feature_terms.py``), and the components named by ``ablate`` switched off."""
    settings = DistillSettings(**OmegaConf.to_container(cfg.distill, resolve=True),  # unknown keys: TypeError
                               terms=feature_terms.configured(cfg.get("terms")))
    return apply_ablation(settings, parse_ablate(cfg.get("ablate", FULL)))


JOB_MODULE = "entrenar_bench.run.job"


def training_function() -> Callable[..., dict[str, Any]]:
    """``run/job.py``'s ``train_student``, imported at a process's first job (not at the top: see job.py) with the
    cyclic garbage collector paused: that import (Lightning and what it loads) makes ~450,000 objects, none of
    them garbage, and the collector, run every 700 new objects, walks the growing heap again and again on the
    way. The objects alive then are frozen (``gc.freeze``: left out of later collections; the first job's config
    among them is never freed). Measured: 3.5 instead of 4.2 CPU s."""
    if JOB_MODULE not in sys.modules and gc.isenabled():
        gc.disable()
        try:
            importlib.import_module(JOB_MODULE)
        finally:
            gc.freeze()
            gc.enable()
    return importlib.import_module(JOB_MODULE).train_student


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def run(cfg: DictConfig, run_dir: Path | str | None = None) -> dict[str, Any]:
    """One job: validate, skip if already completed here, else train and write result.json.

    A completed record of the same config is returned as is (resume); a failed or corrupt
    one is rerun, from its mid-run checkpoint if it has one. Raises RunFailed after recording a failure.
    """
    run_dir = Path(run_dir if run_dir is not None else HydraConfig.get().runtime.output_dir)
    cfg = student_alone(cfg)
    validate_config(cfg)
    with job_lock(run_dir):
        try:
            return _run(cfg, run_dir)
        except OSError as e:  # the record cannot be written: a read-only place or a full disk
            raise RunFailed(f"run failed ({run_dir}): {e}") from None


@contextmanager
def job_lock(run_dir: Path) -> Iterator[None]:
    """One trainer per job. A second process reaching a job that another trains (two multiruns into one
    directory, or a resume beside a run by hand) waits for it, then finds its record: completed, it is
    skipped. Only a run's first rank locks (its other ranks train beside it)."""
    with ExitStack() as stack:
        if first_rank():
            try:
                run_dir.mkdir(parents=True, exist_ok=True)
                stack.enter_context(locks.hold(run_dir / JOB_LOCK, wait=True))
            except OSError as e:
                raise RunFailed(f"run failed ({run_dir}): cannot write there ({e.strerror})") from None
        yield


def _run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    job_config = OmegaConf.to_container(cfg, resolve=True)
    digest = config_hash(computed_config(job_config))
    try:
        existing = read_result(run_dir)
    except CorruptRecord as e:
        log.warning("rerunning: %s", e)
        existing = None
    if existing and existing["status"] == COMPLETED:
        if existing.get("config_hash") != digest:
            raise ConfigError(f"{run_dir} holds a completed run of another configuration; use a new sweep directory")
        log.info("already completed in %s; skipped", run_dir)
        return existing
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    settings = distill_settings(cfg)
    record: dict[str, Any] = {
        "status": FAILED,
        "seed": cfg.seed,
        "distill": {k: v for k, v in dataclasses.asdict(settings).items() if k != "terms"},  # terms: config.terms
        "config": job_config,
        "config_hash": digest,
        "overrides": overrides,
        "version": __version__,
        "started_at": _now(),
        "error": None,
    }
    loggers: list = []
    try:
        train_student = training_function()
        loggers = job_loggers(cfg, run_dir, record, first_rank())
        record.update(train_student(cfg, settings, checkpoint_path(run_dir, digest), run_dir, loggers))
        record["status"] = COMPLETED
    except Exception as e:  # any failure after validation is recorded, never lost
        record["error"] = f"{type(e).__name__}: {e}"
        record["finished_at"] = _now()
        if first_rank():
            write_result(run_dir, record)
            finish_tracking(loggers, record, run_dir)
        if isinstance(e, ConfigError):  # a setting the job could check only once its data was loaded
            raise ConfigError(f"{e} ({run_dir})") from None
        raise RunFailed(f"run failed ({run_dir}): {record['error']}") from None
    record["finished_at"] = _now()
    if not first_rank():
        return record
    write_result(run_dir, record)
    finish_tracking(loggers, record, run_dir)
    if not cfg.train.keep_checkpoints:
        remove_checkpoints(run_dir)
    log.info(
        "%s seed=%s accuracy=%.4f loss=%.4f time=%.1fs",
        record["distill"]["name"], cfg.seed, record["metrics"]["accuracy"], record["metrics"]["loss"], record["time_s"],
    )
    return record


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> None:
    """In a single run, a bad setting (exit 2) or a failed run (exit 1) ends the process with one line; in a
    multirun the error goes back to Hydra, which records it and carries on with the other jobs."""
    quiet_progress_bars()
    try:
        run(cfg)
    except CompactHydraException as e:
        if HydraConfig.get().mode != RunMode.RUN:
            raise
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2 if isinstance(e, ConfigError) else 1) from None
