"""Read a sweep directory into a table of runs: the run directories are the source of truth.

A sweep directory holds Hydra's ``multirun.yaml`` and one job directory per run, each
with ``.hydra/overrides.yaml`` and (once finished) ``result.json``. Runs are grouped by
their resolved config minus ``seed`` and bookkeeping keys, so any override a user adds
forms its own group.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from entrenar_bench.run.record import COMPLETED, RESULT_FILE, is_run_invariant

MISSING = "missing"


class SweepError(ValueError):
    """The directory cannot be read as a sweep (absent, empty, not a sweep)."""


@dataclass
class Collection:
    """All runs of one sweep: ``runs`` has one row per job (completed, failed or missing)."""

    sweep_dir: Path
    runs: pd.DataFrame
    problems: list[str] = field(default_factory=list)
    group_keys: list[str] = field(default_factory=list)

    @property
    def completed(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == COMPLETED]

    @property
    def not_completed(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] != COMPLETED]


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}``; lists become JSON text so they can be grouped on."""
    if not isinstance(config, dict):
        return {prefix[:-1]: json.dumps(config) if isinstance(config, list) else config}
    out: dict[str, Any] = {}
    for key, value in config.items():
        out.update(flatten(value, f"{prefix}{key}."))
    return out


@functools.lru_cache(maxsize=None)
def is_bookkeeping(key: str) -> bool:
    """Not a group key: the seed (groups are over seeds) or a key that cannot change what a run computes.
    Cached: the same few dozen keys repeat in every run of a sweep."""
    return key == "seed" or is_run_invariant(key)


def expected_jobs(sweep_dir: Path) -> list[list[str]] | None:
    """The override list of every job the sweep asked for, as Hydra's basic sweeper expands it."""
    path = sweep_dir / "multirun.yaml"
    if not path.exists():
        return None
    from entrenar_bench.sweep.compose import sweep_jobs

    try:
        conf = yaml.safe_load(path.read_text())
        return sweep_jobs(conf["hydra"].get("sweeper", {}).get("params") or {}, list(conf["hydra"]["overrides"]["task"]))
    except Exception:  # a sweeper other than Hydra's basic one, or an edited file: count what is there
        return None


def _job_dirs(sweep_dir: Path) -> list[Path]:
    with os.scandir(sweep_dir) as entries:
        dirs = [Path(e.path) for e in entries if e.is_dir() and not e.name.startswith(".")]
    return [d for d in dirs if (d / RESULT_FILE).exists() or (d / ".hydra").is_dir()]


def _overrides(job_dir: Path) -> list[str] | None:
    try:
        return yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
    except (OSError, yaml.YAMLError):
        return None


def _row(job_dir: Path, problems: list[str]) -> dict[str, Any]:
    path = job_dir / RESULT_FILE
    row: dict[str, Any] = {"job": job_dir.name, "status": MISSING}
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or "status" not in record:
            raise ValueError("no 'status'")
    except FileNotFoundError:
        overrides = _overrides(job_dir)
        row["overrides"] = " ".join(overrides or [])
        row["error"] = "no result.json (not run, still running, or killed)"
        return row
    except (ValueError, OSError) as e:
        problems.append(f"{path}: corrupt result.json ({e}); skipped")
        row["error"] = "corrupt result.json"
        return row
    metrics = record.get("metrics") or {}
    row.update(
        status=record["status"],
        seed=record.get("seed"),
        accuracy=metrics.get("accuracy"),
        loss=metrics.get("loss"),
        val_accuracy=metrics.get("val_accuracy"),
        time_s=record.get("time_s"),
        peak_memory_gb=record.get("peak_memory_gb"),
        device=record.get("device"),
        error=record.get("error"),
        overrides=" ".join(record.get("overrides") or []),
    )
    config = flatten(record.get("config") or {})
    row.update({f"cfg:{k}": v for k, v in config.items() if not is_bookkeeping(k)})
    return row


def collect(sweep_dir: Path | str) -> Collection:
    """Read every job directory under ``sweep_dir``; list failed, missing and corrupt runs."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise SweepError(f"{sweep_dir}: no such directory")
    problems: list[str] = []
    rows = [_row(d, problems) for d in _job_dirs(sweep_dir)]
    expected = expected_jobs(sweep_dir)
    if expected is not None:
        seen = {r.get("overrides") for r in rows}
        for overrides in expected:
            if " ".join(overrides) not in seen:
                rows.append({"job": None, "status": MISSING, "overrides": " ".join(overrides),
                             "error": "never started"})
    if not rows:
        raise SweepError(f"{sweep_dir}: no runs found (no job directories with result.json or .hydra/)")
    runs = pd.DataFrame(rows)
    config_cols = [c for c in runs.columns if c.startswith("cfg:")]
    recorded = runs[runs["status"] != MISSING]  # failed runs too: their config still names their group
    group_keys = [c for c in config_cols if recorded[c].astype(str).nunique(dropna=False) > 1]
    runs["group"] = _labels(runs, group_keys)
    return Collection(sweep_dir, runs, problems, [c[4:] for c in group_keys])


def _label_keys(runs: pd.DataFrame, keys: list[str]) -> list[str]:
    """The fewest varying keys that still tell every group apart (names first: ``distill.name``)."""
    keys = sorted(keys, key=lambda k: (not k.endswith(".name"), k))
    distinct = runs[keys].astype(str).drop_duplicates()
    for size in range(1, min(3, len(keys)) + 1):
        for subset in itertools.combinations(keys, size):
            if len(distinct[list(subset)].drop_duplicates()) == len(distinct):
                return list(subset)
    return keys


def _labels(runs: pd.DataFrame, keys: list[str]) -> pd.Series:
    """A readable group label: the values of the keys that vary across the sweep."""
    if not keys:
        return pd.Series(["all"] * len(runs), index=runs.index)
    keys = _label_keys(runs[runs["status"] != MISSING], keys)
    if len(keys) == 1:
        return runs[keys[0]].map(_fmt)
    return runs[keys].apply(lambda r: ",".join(f"{k[4:]}={_fmt(v)}" for k, v in r.items()), axis=1)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN: the run has no config (missing)
            return "?"
        return f"{value:g}"
    return str(value)
