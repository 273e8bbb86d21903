"""The run record: ``result.json`` in each job's run directory, written atomically.

Fields (the contract aggregation reads): ``status`` ("completed" | "failed"), ``seed``,
``metrics`` {``accuracy``, ``loss``, ``val_accuracy``, ``val_loss``}, ``time_s``,
``peak_memory_gb``, ``peak_memory_kind``, ``device``, ``params``, ``samples_per_s``,
``distill``, ``config`` (resolved job config), ``config_hash``, ``overrides``, and
``error`` on failure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from entrenar_bench.files import write_json_atomic

RESULT_FILE = "result.json"
COMPLETED = "completed"
FAILED = "failed"


# Keys that say where and how a run is placed or logged, never what it computes (launcher, CPU threads,
# paths, which device index, progress output). The one list used both by a run's config hash (so a
# sweep resumed under another launcher finds its completed runs) and by aggregation's grouping (runs
# differing only here are the same computation). Precision, accumulation, clipping and every other
# trainer setting can change the metrics, so they are not here: they form groups.
RUN_INVARIANT_KEYS = (
    "launcher", "threads", "paths", "task_name",
    "trainer.devices", "trainer.enable_progress_bar", "trainer.enable_model_summary", "trainer.logger",
)


def is_run_invariant(key: str) -> bool:
    """``key`` (dotted) is one of :data:`RUN_INVARIANT_KEYS` or lies under one."""
    return any(key == k or key.startswith(f"{k}.") for k in RUN_INVARIANT_KEYS)


def computed_config(config: dict[str, Any]) -> dict[str, Any]:
    """A resolved config without its run-invariant keys: what the config hash covers."""
    def strip(node: Any, prefix: str) -> Any:
        if not isinstance(node, dict):
            return node
        return {k: strip(v, f"{prefix}{k}.") for k, v in node.items() if not is_run_invariant(f"{prefix}{k}")}
    return strip(config, "")


class CorruptRecord(ValueError):
    """A ``result.json`` that cannot be read as a run record."""


def write_result(run_dir: Path, record: dict[str, Any]) -> Path:
    path = Path(run_dir) / RESULT_FILE
    write_json_atomic(path, record)
    return path


def read_result(run_dir: Path) -> dict[str, Any] | None:
    """The record in ``run_dir``, or None if there is none; CorruptRecord if it is unreadable."""
    path = Path(run_dir) / RESULT_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as e:
        raise CorruptRecord(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(record, dict) or record.get("status") not in (COMPLETED, FAILED):
        raise CorruptRecord(f"{path}: no 'status' of 'completed' or 'failed'")
    return record
