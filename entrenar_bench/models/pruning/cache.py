"""Pruning results cached by content in the model cache (``<paths.cache_dir>/pruning/<key>/``).

The key is the SHA-256 of what the result depends on (the teacher's file digest, the calibration blocks'
digest, the method and the target); a file lock (``<name>.lock``, as the model cache's teachers and base
students use) makes parallel jobs compute it once: the others wait and read it. Without a cache directory
the result is computed in memory every time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock

from entrenar_bench.files import config_hash

FOLDER = "pruning"

T = TypeVar("T")


def cache_directory(cache_dir: str | Path | None, key: dict[str, Any]) -> Path | None:
    """``<cache_dir>/pruning/<16 hex of the key's hash>``, created; None without a cache directory."""
    if cache_dir is None:
        return None
    directory = Path(cache_dir).expanduser().resolve() / FOLDER / config_hash(key)[:16]
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def cached(directory: Path | None, name: str, make: Callable[[], T], save: Callable[[T, Path], None],
           load: Callable[[Path], T]) -> T:
    """``load(directory / name)``, made by ``make`` and written by ``save`` first if absent, under the lock;
    ``make()`` alone where there is no directory. ``save`` writes atomically (a killed job leaves no half file)."""
    if directory is None:
        return make()
    path = directory / name
    with FileLock(str(directory / f"{name}.lock")):
        if not path.exists():
            save(make(), path)
    return load(path)
