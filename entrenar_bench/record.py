"""The run record: ``result.json`` in each job's run directory, written atomically.

Fields (the contract aggregation reads): ``status`` ("completed" | "failed"), ``seed``,
``metrics`` {``accuracy``, ``loss``, ``val_accuracy``, ``val_loss``}, ``time_s``,
``peak_memory_gb``, ``peak_memory_kind``, ``device``, ``params``, ``samples_per_s``,
``distill``, ``config`` (resolved job config), ``config_hash``, ``overrides``, and
``error`` on failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

RESULT_FILE = "result.json"
_UMASK = os.umask(0)
os.umask(_UMASK)
COMPLETED = "completed"
FAILED = "failed"


class CorruptRecord(ValueError):
    """A ``result.json`` that cannot be read as a run record."""


def config_hash(config: Any) -> str:
    """SHA-256 of the canonical JSON of a (resolved, plain) config."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def write_json_atomic(path: Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
