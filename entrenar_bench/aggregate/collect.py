"""Read a sweep directory into a table of runs: the run directories are the source of truth.

A sweep directory holds Hydra's ``multirun.yaml`` and one job directory per run, each
with ``.hydra/overrides.yaml`` and (once finished) ``result.json``. Whatever the bytes on disk,
reading never fails on one run: a damaged record (not JSON, NaN or text where a number belongs,
a link, not a file) is one row with its reason, a symbolic link in the sweep is not followed, and
nothing read is ever run (the expected jobs come from Hydra's override parser, bounded in size).

Runs are grouped by their resolved config minus the factors (``seed``, ``teacher.seed``: what a
group's runs are samples over) and the run-invariant keys, so any override a user adds forms its
own group.
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

from entrenar_bench.aggregate.metrics import (
    ACCURACY, COLUMN_PREFIX, DIRECTION_PREFIX, NAME, TEACHER_PREFIX, Metric, choose,
)
from entrenar_bench.aggregate.spent import spent_columns
from entrenar_bench.files import load_yaml, read_data
from entrenar_bench.run.record import (
    COMPLETED, OPTIONAL_NUMBERS, REQUIRED_NUMBERS, RESULT_FILE, CorruptRecord, field_of, is_finite_number,
    is_run_invariant, read_result,
)
from entrenar_bench.sweep.rounds import round_dirs

MISSING = "missing"
MAX_EXPECTED_JOBS = 1_000_000  # a multirun.yaml asking for more is not expanded (its jobs on disk still count)


class SweepError(ValueError):
    """The directory cannot be read as a sweep (absent, empty, not a sweep)."""


@dataclass
class Collection:
    """All runs of one sweep: ``runs`` has one row per job (completed, failed or missing); ``metric``: the one
    that decides (aggregate/metrics.py)."""

    sweep_dir: Path
    runs: pd.DataFrame
    problems: list[str] = field(default_factory=list)
    group_keys: list[str] = field(default_factory=list)
    unwritten: list[str] = field(default_factory=list)  # outputs (plots) that could not be written, and why
    metric: Metric = ACCURACY

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


# What a group's runs are samples over, not what tells groups apart: the student seed, and the
# teacher's seed (several teachers, `--teachers K`, make the teacher a random factor: aggregate/units.py).
FACTORS = ("seed", "teacher.seed")


@functools.cache
def is_bookkeeping(key: str) -> bool:
    """Not a group key: a factor (groups are over seeds and teachers) or a key that cannot change what a
    run computes. Cached: the same few dozen keys repeat in every run of a sweep."""
    return key in FACTORS or is_run_invariant(key)


def _reason(error: Exception) -> str:
    return " ".join(str(error).split())[:200]


def expected_jobs(sweep_dir: Path, problems: list[str] | None = None) -> list[list[str]] | None:
    """The override list of every job the sweep asked for, as Hydra's basic sweeper expands it; None (and a
    problem noted) if ``multirun.yaml`` is absent, unreadable or asks for too many jobs."""
    path = sweep_dir / "multirun.yaml"
    if not os.path.lexists(path):
        return None
    from entrenar_bench.sweep.compose import sweep_jobs

    try:
        hydra = load_yaml(read_data(path))["hydra"]
        params, task = hydra.get("sweeper", {}).get("params") or {}, hydra["overrides"]["task"]
        if not isinstance(params, dict) or not isinstance(task, list) or not all(isinstance(o, str) for o in task):
            raise ValueError("no lists of overrides")
        return sweep_jobs(params, task, MAX_EXPECTED_JOBS)
    except Exception as e:  # a sweeper other than Hydra's basic one, or an edited file: count what is there
        if problems is not None:
            problems.append(f"{path}: not read ({_reason(e)}); jobs that never started are not counted")
        return None


def _job_dirs(sweep_dir: Path, problems: list[str]) -> list[Path]:
    """The job directories: sub-folders with a result.json or a .hydra folder. Symbolic links are not followed."""
    try:
        with os.scandir(sweep_dir) as entries:
            found = sorted((e.name, e.is_symlink(), e.is_dir(follow_symlinks=False)) for e in entries
                           if not e.name.startswith("."))
    except OSError as e:
        raise SweepError(f"{sweep_dir}: cannot read ({e.strerror})") from None
    problems += [f"{sweep_dir / name}: a symbolic link; not followed" for name, link, _ in found if link]
    dirs = [sweep_dir / name for name, link, is_dir in found if is_dir and not link]
    return [d for d in dirs if os.path.lexists(d / RESULT_FILE) or (d / ".hydra").is_dir()]


def _overrides(job_dir: Path) -> str:
    """The job's overrides from Hydra's ``.hydra/overrides.yaml``, as one string ("" if unreadable)."""
    try:
        overrides = load_yaml(read_data(job_dir / ".hydra" / "overrides.yaml"))
    except (OSError, ValueError, yaml.YAMLError):
        return ""
    return " ".join(overrides) if isinstance(overrides, list) and all(isinstance(o, str) for o in overrides) else ""


def _text(value: Any) -> str | None:
    """A record's text field as text (JSON of whatever else it holds)."""
    if value is None or isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str)[:300]
    except (ValueError, RecursionError):
        return "(not text)"


def _primary(record: dict[str, Any]) -> tuple[str | None, bool | None]:
    """The run's ``primary_metric`` (name, lower_is_better), or (None, None) where it records none usable."""
    primary = record.get("primary_metric")
    if not isinstance(primary, dict):
        return None, None
    name, lower = primary.get("name"), primary.get("lower_is_better")
    if not isinstance(name, str) or not NAME.fullmatch(name) or not isinstance(lower, bool):
        return None, None
    return name, lower


def _metric_columns(record: dict[str, Any]) -> dict[str, float]:
    """Every finite number in the record's ``metrics``, as ``metric:<name>`` (the choosable metrics)."""
    metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    return {f"{COLUMN_PREFIX}{k}": float(v) for k, v in metrics.items()
            if isinstance(k, str) and NAME.fullmatch(k) and is_finite_number(v)}


def _teacher_metric_columns(teacher: dict[str, Any]) -> dict[str, float]:
    """The teacher's metrics a run measured itself (``teacher.sample_metrics``: ROUGE-L of its greedy responses
    and the like), as ``teacher_metric:<name>``: the reference row's, beside those of its cache record."""
    metrics = teacher.get("sample_metrics") if isinstance(teacher.get("sample_metrics"), dict) else {}
    return {f"{TEACHER_PREFIX}{k}": float(v) for k, v in metrics.items()
            if isinstance(k, str) and NAME.fullmatch(k) and is_finite_number(v)}


def _directions(record: dict[str, Any]) -> dict[str, bool]:
    """Each metric's direction as the run's task declared it (``metric_directions``), as ``lower:<name>``."""
    directions = record.get("metric_directions") if isinstance(record.get("metric_directions"), dict) else {}
    return {f"{DIRECTION_PREFIX}{k}": v for k, v in directions.items()
            if isinstance(k, str) and NAME.fullmatch(k) and isinstance(v, bool)}


def _fields(record: dict[str, Any]) -> dict[str, Any]:
    """The columns a (checked) record gives; an empty record gives them all as None."""
    teacher = record.get("teacher") if isinstance(record.get("teacher"), dict) else {}
    primary, lower = _primary(record)
    teacher_seed = field_of(record, "config.teacher.seed")
    number = {key: field_of(record, key) for key in (*REQUIRED_NUMBERS, *OPTIONAL_NUMBERS)}
    number = {key.split(".")[-1]: value if is_finite_number(value) else None for key, value in number.items()}
    return dict(
        seed=record.get("seed") if type(record.get("seed")) is int else None,
        teacher_seed=teacher_seed if teacher and type(teacher_seed) is int else None,
        teacher_cache=_text(teacher.get("cache")),
        accuracy=number["accuracy"],
        loss=number["loss"],
        val_accuracy=number["val_accuracy"],
        val_loss=number["val_loss"],
        time_s=number["time_s"],
        generation_s=_finite(field_of(record, "time_split.generation_s")),  # sampling continuations, part of time_s
        peak_memory_gb=number["peak_memory_gb"],
        device=_text(record.get("device")),
        error=_text(record.get("error")),
        primary_metric=primary,
        primary_lower_is_better=lower,
        **_metric_columns(record),
        **spent_columns(record),
        **_teacher_metric_columns(teacher),
        **_directions(record),
    )


def _finite(value: Any) -> float | None:
    return float(value) if is_finite_number(value) else None


def _row(job_dir: Path) -> dict[str, Any]:
    """One job: its record's fields and config, or status missing with why (no record, or a damaged one)."""
    row: dict[str, Any] = {"job": job_dir.name, "status": MISSING, **_fields({})}
    try:
        record = read_result(job_dir)
        config = flatten(record.get("config") or {}) if record else {}
    except (CorruptRecord, RecursionError) as e:
        path = job_dir / RESULT_FILE
        reason = str(e).removeprefix(f"{path}: ") if isinstance(e, CorruptRecord) else "nested too deeply"
        return {**row, "overrides": _overrides(job_dir), "error": f"{job_dir.name}/{RESULT_FILE} damaged: {reason}"}
    if record is None:
        return {**row, "overrides": _overrides(job_dir), "error": "no result.json (not run, still running, or killed)"}
    overrides = record.get("overrides")
    row.update(_fields(record), status=record["status"],
               overrides=" ".join(overrides) if isinstance(overrides, list) and all(
                   isinstance(o, str) for o in overrides) else _overrides(job_dir))
    row.update({f"cfg:{k}": v for k, v in config.items() if not is_bookkeeping(k)})
    return row


def _multirun_rows(part: Path, sweep_dir: Path, problems: list[str]) -> list[dict[str, Any]]:
    """The rows of one multirun folder (the sweep, or a round of an auto sweep: its jobs named
    ``round-01/0``, …), with the jobs it asked for that never started."""
    rows = [_row(d) for d in _job_dirs(part, problems)]
    if part != sweep_dir:
        rows = [{**r, "job": f"{part.name}/{r['job']}"} for r in rows]
    expected = expected_jobs(part, problems)
    if expected is not None:
        seen = {r.get("overrides") for r in rows}
        for overrides in expected:
            if " ".join(overrides) not in seen:
                rows.append({"job": None, "status": MISSING, **_fields({}), "overrides": " ".join(overrides),
                             "error": "never started"})
    return rows


def collect(sweep_dir: Path | str, metric: str | None = None) -> Collection:
    """Read every job directory under ``sweep_dir``; list failed, missing and damaged runs, each once. The
    deciding metric: ``metric`` (UsageError naming the recorded ones if the runs did not record it), else the
    runs' primary metric, else accuracy."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise SweepError(f"{sweep_dir}: no such directory")
    problems: list[str] = []
    rows = [row for part in round_dirs(sweep_dir) or [sweep_dir] for row in _multirun_rows(part, sweep_dir, problems)]
    if not rows:
        raise SweepError(f"{sweep_dir}: no runs found (no job directories with result.json or .hydra/)")
    runs = pd.DataFrame(rows)
    config_cols = [c for c in runs.columns if c.startswith("cfg:")]
    recorded = runs[runs["status"] != MISSING]  # failed runs too: their config still names their group
    group_keys = [c for c in config_cols if recorded[c].astype(str).nunique(dropna=False) > 1]
    runs["group"] = _labels(runs, group_keys)
    decides = choose(runs[runs["status"] == COMPLETED], metric, problems)
    return Collection(sweep_dir, runs, problems, [c[4:] for c in group_keys], metric=decides)


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
    """A readable group label: the values of the keys that vary across the sweep; with none varying, the
    strategy's name where the runs have one (``compare --strategies kd`` is labelled ``kd``), else ``all``."""
    if not keys:
        names = runs.get("cfg:distill.name", pd.Series(dtype=object)).dropna().astype(str).unique()
        return pd.Series([names[0] if len(names) == 1 else "all"] * len(runs), index=runs.index)
    keys = _label_keys(runs[runs["status"] != MISSING], keys)
    if len(keys) == 1:
        return runs[keys[0]].map(fmt)
    return runs[keys].apply(lambda r: ",".join(f"{k[4:]}={fmt(v)}" for k, v in r.items()), axis=1)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN: the run has no config (missing)
            return "?"
        return f"{value:g}"
    return str(value)
