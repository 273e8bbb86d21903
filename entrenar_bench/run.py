"""The Hydra app: one job is one distillation run, recorded in ``result.json``.

    python -m entrenar_bench.run                                   # kd on the embedded digits
    python -m entrenar_bench.run -m distill=none,kd seed=0,1,2     # a sweep

``run(cfg, run_dir)`` does the work and is what tests call; ``main`` is the thin entry.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf

from entrenar_bench import __version__
from entrenar_bench import placement  # noqa: F401  (registers the launcher configs' resolvers)
from entrenar_bench.distill.ablation import FULL, apply_ablation, parse_ablate
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.record import COMPLETED, FAILED, CorruptRecord, config_hash, read_result, write_result
from entrenar_bench.validate import ConfigError, validate_config

log = logging.getLogger(__name__)

# Where and how fast a job runs, not what it computes: a sweep resumed with another launcher or
# thread count still finds its completed jobs.
PLACEMENT_KEYS = ("launcher", "threads")


class RunFailed(CompactHydraException):
    """Training raised or diverged; the failure is recorded in result.json."""


def distill_settings(cfg: DictConfig) -> DistillSettings:
    """The strategy's settings with the components named by ``ablate`` switched off."""
    fields = {f.name for f in dataclasses.fields(DistillSettings)}
    settings = DistillSettings(**{k: v for k, v in cfg.distill.items() if k in fields})
    return apply_ablation(settings, parse_ablate(cfg.get("ablate", FULL)))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def run(cfg: DictConfig, run_dir: Path | str | None = None) -> dict[str, Any]:
    """One job: validate, skip if already completed here, else train and write result.json.

    A completed record of the same config is returned as is (resume); a failed or corrupt
    one is rerun. Raises RunFailed after recording a failure.
    """
    run_dir = Path(run_dir if run_dir is not None else HydraConfig.get().runtime.output_dir)
    validate_config(cfg)
    job_config = OmegaConf.to_container(cfg, resolve=True)
    digest = config_hash({k: v for k, v in job_config.items() if k not in PLACEMENT_KEYS})
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
        "distill": dataclasses.asdict(settings),
        "config": job_config,
        "config_hash": digest,
        "overrides": overrides,
        "version": __version__,
        "started_at": _now(),
        "error": None,
    }
    try:
        from entrenar_bench.job import train_student  # here, not at the top: see job.py

        record.update(train_student(cfg, settings))
        record["status"] = COMPLETED
    except Exception as e:  # any failure after validation is recorded, never lost
        record["error"] = f"{type(e).__name__}: {e}"
        record["finished_at"] = _now()
        write_result(run_dir, record)
        raise RunFailed(f"run failed ({run_dir}): {record['error']}") from None
    record["finished_at"] = _now()
    write_result(run_dir, record)
    log.info(
        "%s seed=%s accuracy=%.4f loss=%.4f time=%.1fs",
        record["distill"]["name"], cfg.seed, record["metrics"]["accuracy"], record["metrics"]["loss"], record["time_s"],
    )
    return record


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    try:
        main()
    finally:
        gc.freeze()  # skip the final collections at exit (~1 s with Lightning loaded; see cli.main.exit_now)
