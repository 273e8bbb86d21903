"""Files: the config directory, atomic writes (fsync, then rename), the canonical-JSON hash,
and YAML files named on the command line."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from entrenar_bench.errors import UsageError

CONF_DIR = Path(__file__).resolve().parent / "conf"

_UMASK = os.umask(0)
os.umask(_UMASK)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, anything not JSON as ``str``: one text per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_hash(config: Any) -> str:
    """SHA-256 of the canonical JSON of a (resolved, plain) config."""
    return sha256_text(canonical_json(config))


def atomic_path(path: Path) -> tuple[int, str]:
    """A temporary file beside ``path`` (same file system, so a rename replaces ``path`` atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
    return fd, tmp


def write_atomic(path: Path | str, write: Any) -> Path:
    """Call ``write(binary file)`` on a temporary file beside ``path``, fsync, then rename over ``path``:
    readers never see half a file, and a failure (a full disk) leaves the old file or none, never a partial one."""
    path = Path(path)
    fd, tmp = atomic_path(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: Path | str, text: str) -> Path:
    return write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def write_json_atomic(path: Path | str, payload: Any) -> Path:
    return write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def read_yaml_option(path: Path | str, where: str) -> Any:
    """The parsed content of ``path``; UsageError naming ``where`` (e.g. ``--base FILE``) if it is
    missing or not valid YAML."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{where}: no such file")
    try:
        return yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UsageError(f"{where}: not valid YAML ({' '.join(str(e).split())[:160]})") from None
