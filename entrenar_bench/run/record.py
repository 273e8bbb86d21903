"""The run record: ``result.json`` in each job's run directory, written atomically.

Fields (the contract aggregation reads): ``status`` ("completed" | "failed"), ``seed``,
``metrics`` {``accuracy``, ``loss``, ``val_accuracy``, ``val_loss``}, ``time_s`` (with ``validation_s``, its
learning-curve validation passes, apart), ``peak_memory_gb``, ``peak_memory_kind``, ``device``, ``params``,
``samples_per_s`` (over ``time_s`` less ``validation_s``, as a language model's ``tokens_per_s``),
``distill``, ``config`` (resolved job config), ``config_hash``, ``overrides``, ``resumed_from_epoch``
(epochs found done in a mid-run checkpoint, else null), ``devices`` with ``peak_memory_per_device_gb``,
and ``error`` on failure. Mid-run checkpoints live in ``checkpoints/`` beside the record.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from entrenar_bench.files import read_data, write_json_atomic

RESULT_FILE = "result.json"
CHECKPOINT_DIR = "checkpoints"
COMPLETED = "completed"
FAILED = "failed"


# Keys that say where and how a run is placed or logged, never what it computes (launcher, CPU threads, paths, which
# device index, progress output, the experiment trackers of the ``logger`` group). The one list used both by a run's
# config hash (so a sweep resumed under another launcher finds its completed runs) and by aggregation's grouping (runs
# differing only here are the same computation). Precision, accumulation, clipping and every other trainer setting can
# change the metrics, so they are not here: they form groups. So does the number of devices: batches are per device, so
# N devices train on N times larger batches and take fewer steps. Mid-run checkpoints are here: a resumed run ends
# exactly where an uninterrupted one does; so is whether the trained student is written to disk (save_student).
RUN_INVARIANT_KEYS = (
    "launcher", "threads", "paths", "save_student", "task_name", "limits",
    "train.checkpoint_every", "train.keep_checkpoints",
    "trainer.enable_progress_bar", "trainer.enable_model_summary", "trainer.logger", "logger",
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


def checkpoint_path(run_dir: Path | str, config_hash: str) -> Path:
    """The mid-run checkpoint of the run of ``config_hash`` in ``run_dir``: named by the hash, so a run never
    resumes from a checkpoint of another configuration."""
    return Path(run_dir) / CHECKPOINT_DIR / f"{config_hash[:16]}.ckpt"


def remove_checkpoints(run_dir: Path | str) -> None:
    shutil.rmtree(Path(run_dir) / CHECKPOINT_DIR, ignore_errors=True)


def write_result(run_dir: Path, record: dict[str, Any]) -> Path:
    path = Path(run_dir) / RESULT_FILE
    write_json_atomic(path, record)
    return path


def is_finite_number(value: Any) -> bool:
    """A JSON number (not a boolean) that is finite as a float: no NaN, no infinity, no 1e400."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


REQUIRED_NUMBERS = ("metrics.accuracy", "metrics.loss", "time_s", "peak_memory_gb")  # a completed run's
OPTIONAL_NUMBERS = ("metrics.val_accuracy", "metrics.val_loss", "samples_per_s")  # or null


def field_of(record: dict[str, Any], key: str) -> Any:
    """``record[a][b]`` for ``a.b``; None where a part is missing or not a mapping."""
    value: Any = record
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def record_problem(record: Any) -> str | None:
    """Why ``record`` cannot be used as a run record, or None. A completed run needs a non-negative integer
    ``seed`` and finite :data:`REQUIRED_NUMBERS` (accuracy in [0, 1]); its other numbers are finite or null;
    ``config`` is a mapping."""
    if not isinstance(record, dict):
        return f"not a run record (a JSON {type(record).__name__})"
    if record.get("status") not in (COMPLETED, FAILED):
        return "no 'status' of 'completed' or 'failed'"
    if not isinstance(record.get("config", {}), dict):
        return "'config' is not a mapping"
    if record["status"] == FAILED:
        return None
    seed = record.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        return f"'seed' is not a non-negative integer (got {str(seed)[:40]!r})"
    for key in REQUIRED_NUMBERS + OPTIONAL_NUMBERS:
        value = field_of(record, key)
        if not is_finite_number(value) and (key in REQUIRED_NUMBERS or value is not None):
            return f"'{key}' is not a finite number (got {str(value)[:40]!r})"
    if not 0 <= record["metrics"]["accuracy"] <= 1:
        return f"'metrics.accuracy' is not between 0 and 1 (got {record['metrics']['accuracy']!r})"
    return None


def read_result(run_dir: Path) -> dict[str, Any] | None:
    """The record in ``run_dir``, or None if there is none; CorruptRecord saying why if it cannot be used
    (unreadable, a link or not a file, not JSON, not a run record): resume reruns such a job."""
    path = Path(run_dir) / RESULT_FILE
    try:
        data = read_data(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CorruptRecord(f"{path}: unreadable ({e.strerror})") from None
    try:
        record = json.loads(data)
    except json.JSONDecodeError as e:
        raise CorruptRecord(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except (ValueError, RecursionError):  # not UTF-8, or nested too deeply
        raise CorruptRecord(f"{path}: not valid JSON (not UTF-8 text, or nested too deeply)") from None
    problem = record_problem(record)
    if problem:
        raise CorruptRecord(f"{path}: {problem}")
    return record
