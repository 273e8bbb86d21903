"""``artifact.yaml``: read (with one-line errors), write atomically, update under a file lock.

An artifact is a YAML mapping whose ``schema`` is :data:`SCHEMA`; any other file is refused,
so a config or a results file is never mistaken for one and overwritten.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock

from entrenar_bench.errors import UsageError
from entrenar_bench.files import load_yaml, read_data, write_text_atomic

SCHEMA = "entrenar-bench/research-artifact/1"
TYPES = ("dataset", "model", "software", "paper", "report")
REQUIRED = {"id": str, "title": str, "type": str, "created": str}


def utc_now() -> str:
    return format_time(datetime.now(timezone.utc))


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a ``Z``: sorts and compares as written."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """An artifact timestamp as an aware datetime (one written without a zone is taken as UTC)."""
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def load_artifact(path: Path) -> dict[str, Any]:
    """The artifact at ``path``; UsageError naming the problem if it is missing, malformed or not one."""
    try:
        text = read_data(path, follow_links=True)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such artifact (create one with `research init`)") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot read artifact ({e.strerror})") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as e:
        raise UsageError(f"{path}: malformed artifact, not valid YAML ({' '.join(str(e).split())[:160]})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UsageError(f"{path}: not a research artifact (no 'schema: {SCHEMA}'; create one with `research init`)")
    problem = _malformed(data)
    if problem:
        raise UsageError(f"{path}: malformed artifact: {problem}")
    return data


def _malformed(data: dict[str, Any]) -> str | None:
    for key, kind in REQUIRED.items():
        if not isinstance(data.get(key), kind):
            return f"'{key}' missing or not a {kind.__name__}"
    if data["type"] not in TYPES:
        return f"unknown type {data['type']!r} (expected one of {', '.join(TYPES)})"
    prereg = data.get("preregistration")
    if prereg is not None:
        records = [prereg, *prereg.get("amendments", [])] if isinstance(prereg, dict) else [None]
        if not isinstance(prereg, dict) or not isinstance(prereg.get("amendments", []), list) \
                or not all(_registration_ok(r) for r in records):
            return "'preregistration' or an amendment lacks a valid timestamp, config_digest or config_files"
    sweeps = data.get("sweeps", [])
    if not isinstance(sweeps, list) or not all(
            isinstance(s, dict) and isinstance(s.get("dir"), str) and isinstance(s.get("flags", []), list)
            and all(isinstance(f, dict) and {"flag", "detail"} <= f.keys() for f in s.get("flags", []))
            for s in sweeps):
        return "'sweeps' is not a list of mappings with a 'dir' and a list of 'flags'"
    return None


def _registration_ok(record: Any) -> bool:
    if not (isinstance(record, dict) and isinstance(record.get("config_files"), dict)
            and isinstance(record.get("config_digest"), str)):
        return False
    try:
        parse_time(record["timestamp"])
    except (KeyError, ValueError, TypeError):
        return False
    return True


def save_artifact(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100))


@contextmanager
def update_artifact(path: Path) -> Iterator[dict[str, Any]]:
    """Load, let the caller change, save: under a lock, so two sweeps linking at once both land."""
    load_artifact(path)  # a missing or foreign file is refused before any lock file is made beside it
    with FileLock(path.with_name(f".{path.name}.lock")):
        data = load_artifact(path)
        yield data
        save_artifact(path, data)
