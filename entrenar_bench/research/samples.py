"""A linked sweep as its claims see it: groups named as the reports name them, each group's samples of a
metric, which way the metric is better, and when the sweep's first run started.

Groups are the aggregate stage's (aggregate/collect.py: resolved config minus the seeds), labelled as the
reports label them: the value of the one key that varies (``kd``, ``4``, ``LoRA r=16``), else ``key=value``
pairs. A claim names a group by its label, or by settings that pick out exactly one group: ``T=4``,
``temperature=4``, ``distill.temperature=4``, ``kd T=4`` (a key matches a config key it ends; ``T`` is
temperature; a bare value matches any key the sweep varies). Values compare as numbers where both are.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from entrenar_bench.aggregate.metrics import recorded_direction
from entrenar_bench.aggregate.collect import Collection, collect
from entrenar_bench.aggregate.units import Units, units
from entrenar_bench.run.record import CorruptRecord, field_of, is_finite_number, read_result
from entrenar_bench.research.artifact import parse_time

DEFAULT_METRIC = "accuracy"
ALIASES = {"t": "temperature", "τ": "temperature", "α": "alpha"}
COLUMN = "claim_metric"


class NoGroup(ValueError):
    """A claim names no group of the sweep, or several."""


@dataclass
class Sweep:
    """One linked sweep directory: ``name`` as linked, its runs, their records (by job), the links' flags, and
    ``started``: the earliest of the sweep's recorded start and its runs' own (None if neither is known)."""

    name: str
    collection: Collection
    records: dict[str, dict]
    flags: list[dict]
    started: datetime | None

    @property
    def labels(self) -> list[str]:
        return [str(g) for g in self.collection.completed["group"].unique()]

    def config(self, label: str) -> dict[str, Any]:
        rows = self.collection.completed[self.collection.completed["group"] == label]
        return {c[4:]: v for c, v in rows.iloc[0].items() if c.startswith("cfg:")}


def _time(text: Any) -> datetime | None:
    try:
        return parse_time(text)
    except (ValueError, TypeError):
        return None


def read_sweep(name: str, folder: Path, links: list[dict]) -> Sweep:
    """The sweep in ``folder`` (SweepError if it cannot be read as one)."""
    collection = collect(folder)
    records = {}
    for job in collection.runs.loc[collection.runs["status"] != "missing", "job"].dropna():
        try:
            records[str(job)] = read_result(folder / str(job)) or {}
        except CorruptRecord:
            continue
    times = [_time(link.get("started")) for link in links] + [_time(r.get("started_at")) for r in records.values()]
    times = [t for t in times if t is not None]
    return Sweep(name, collection, records, [f for link in links for f in link.get("flags") or []],
                 min(times) if times else None)


def _same(value: Any, text: str) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if not isinstance(value, bool):
        try:
            return float(value) == float(text)
        except (TypeError, ValueError):
            pass
    return str(value).lower() == text.lower()


def _keys(config: dict[str, Any], key: str) -> list[str]:
    key = ALIASES.get(key.lower(), key)
    return [k for k in config if k.lower() == key.lower() or k.lower().endswith("." + key.lower())]


def _matches(config: dict[str, Any], varying: list[str], token: str) -> bool:
    if "=" in token:
        key, value = token.split("=", 1)
        return any(_same(config[k], value) for k in _keys(config, key))
    return any(_same(config.get(k), token) for k in varying)


def _normal(name: str) -> str:
    return re.sub(r"\s*([=,])\s*", r"\1", " ".join(name.split())).lower()


def resolve(sweep: Sweep, name: str) -> str:
    """The label of the one group ``name`` picks out; NoGroup saying why not."""
    labels = sweep.labels
    exact = [label for label in labels if _normal(label) == _normal(name)]
    if len(exact) == 1:
        return exact[0]
    tokens = [t for t in re.split(r"[\s,]+", _normal(name)) if t]
    found = [label for label in labels if all(_matches(sweep.config(label), sweep.collection.group_keys, t)
                                              for t in tokens)]
    if len(found) == 1:
        return found[0]
    groups = ", ".join(labels) or "none completed"
    if not found:
        raise NoGroup(f"no group of sweep {sweep.name} is {name!r} (its groups: {groups})")
    raise NoGroup(f"{name!r} matches {len(found)} groups of sweep {sweep.name} ({', '.join(found)}): "
                  "name more settings")


def _factors(sweep: Sweep, swept: set[str]) -> list[str]:
    """The varying keys other than ``swept`` that the swept setting does not determine: the other factors of
    the sweep, held fixed when settings are compared (``finetune.r`` follows ``configuration``; ``distill.name``
    beside ``distill.temperature`` is a factor of its own)."""
    configs = [sweep.config(label) for label in sweep.labels]
    factors = []
    for key in (k for k in sweep.collection.group_keys if k not in swept):
        seen: dict[str, set[str]] = {}
        for config in configs:
            seen.setdefault(str([config.get(k) for k in sorted(swept)]), set()).add(str(config.get(key)))
        if any(len(values) > 1 for values in seen.values()):
            factors.append(key)
    return factors


def settings(sweep: Sweep, key: str, value: str) -> tuple[str, list[str]]:
    """(the group with ``key=value``, the groups with another ``key`` and the same other factors), for a
    best-setting claim."""
    varying = sweep.collection.group_keys
    swept = set(_keys({k: None for k in varying}, key))
    if not swept:
        raise NoGroup(f"sweep {sweep.name} does not vary {key!r} (it varies: {', '.join(varying) or 'nothing'})")
    whole = [label for label in sweep.labels if any(_same(sweep.config(label).get(k), value) for k in swept)]
    claimed = whole[0] if len(whole) == 1 else resolve(sweep, f"{key}={value}")  # "LoRA r=16" as one value
    mine, fixed = sweep.config(claimed), _factors(sweep, swept)
    others = [label for label in sweep.labels if label != claimed
              and all(str(sweep.config(label).get(k)) == str(mine.get(k)) for k in fixed)]
    if not others:
        raise NoGroup(f"sweep {sweep.name} has no other setting of {key!r} to compare {claimed!r} with")
    return claimed, others


def metric_value(record: dict, metric: str) -> float | None:
    """``metrics.<metric>`` of a run record, else its top-level ``<metric>`` (``time_s``), if a finite number."""
    for key in (f"metrics.{metric}", metric):
        value = field_of(record, key)
        if is_finite_number(value):
            return float(value)
    return None


def samples(sweep: Sweep, label: str, metric: str) -> Units:
    """The group's samples of ``metric``: one per run, or per teacher when the teacher is a factor (units.py)."""
    rows = sweep.collection.completed[sweep.collection.completed["group"] == label]
    values = [metric_value(sweep.records.get(str(job), {}), metric) for job in rows["job"]]
    return units(rows.assign(**{COLUMN: pd.to_numeric(pd.Series(values, index=rows.index, dtype=float))}), COLUMN)


def seeds(sweep: Sweep, label: str) -> int:
    """How many seeds of the group completed (what the plan's runs per group counts)."""
    rows = sweep.collection.completed[sweep.collection.completed["group"] == label]
    return int(rows["seed"].nunique())


def primary_metric(sweep: Sweep) -> dict | None:
    """The task's ``primary_metric`` as its runs recorded it ({"name", "lower_is_better"}), if they did."""
    for record in sweep.records.values():
        primary = record.get("primary_metric")
        if isinstance(primary, dict) and isinstance(primary.get("name"), str):
            return primary
    return None


def default_metric(sweep: Sweep) -> str:
    primary = primary_metric(sweep)
    return primary["name"] if primary else DEFAULT_METRIC


def lower_is_better(sweep: Sweep, metric: str) -> bool:
    """As the runs' primary metric says where it is this metric (or its ``val_`` twin); else as their task
    declared it, else the reports' one direction table (``aggregate/metrics.py``)."""
    primary = primary_metric(sweep)
    if primary and metric in (primary["name"], f"val_{primary['name']}") \
            and isinstance(primary.get("lower_is_better"), bool):
        return primary["lower_is_better"]
    return recorded_direction(sweep.collection.completed, metric.removeprefix("val_"))
