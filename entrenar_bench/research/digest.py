"""SHA-256 digests: of files, of text, of the config tree, of artifact records.

The config digest is the SHA-256 of the sorted lines ``<sha256 of file>  <path>`` (the
``sha256sum`` format) over every ``*.yaml`` under ``entrenar_bench/conf/``, path relative to
it: the config tree every sweep composes from. Editing, adding or removing a config file
changes it; the per-file digests name which file changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from entrenar_bench.files import CONF_DIR, canonical_json, sha256_file, sha256_text, tree_digest  # noqa: F401


def config_files(conf_dir: Path | None = None) -> dict[str, str]:
    """``{relative path: sha256}`` of every YAML file in the config tree (default :data:`CONF_DIR`)."""
    conf_dir = conf_dir or CONF_DIR
    return {p.relative_to(conf_dir).as_posix(): sha256_file(p)
            for p in sorted(conf_dir.rglob("*.yaml")) if p.is_file()}




def changed_files(registered: dict[str, str], now: dict[str, str]) -> list[str]:
    """Paths edited, added or removed since ``registered``, each marked ``~``, ``+`` or ``-``."""
    marks = [f"~{p}" for p in sorted(registered.keys() & now.keys()) if registered[p] != now[p]]
    marks += [f"+{p}" for p in sorted(now.keys() - registered.keys())]
    marks += [f"-{p}" for p in sorted(registered.keys() - now.keys())]
    return marks


def record_digest(record: dict[str, Any]) -> str:
    """SHA-256 of a record's canonical JSON, leaving out its own ``record_sha256`` and nested amendments."""
    body = {k: v for k, v in record.items() if k not in ("record_sha256", "amendments")}
    return sha256_text(canonical_json(body))
