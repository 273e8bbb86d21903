"""A sweep's report on its MLflow parent run (run/tracking.py), logged when aggregation finishes: after every
sweep command and after ``entrenar-bench aggregate DIR``, so a plain-Hydra or cluster sweep gets it too.

On the parent: every significance test as metrics (``<where>/<a> vs <b>/p_value``, ``p_adjusted``,
``mean_diff``, ``hedges_g``; ``<where>`` is the test's place in the report, e.g. ``pairs`` or
``best.vs_runner_up``), every ANOVA's F and p, each group's mean test accuracy (``accuracy/<group>``), the
selection as tags (``best``, ``selected_by``) and artifacts: the report's JSON, its text, its table and plots.
A sweep none of whose jobs logged to MLflow has no parent run: nothing is done.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from entrenar_bench.run.tracking import recorded_runs

TEST_NUMBERS = ("p_value", "p_adjusted", "mean_diff", "hedges_g")
ANOVA_NUMBERS = ("F", "p_value")
LABELS = ("strategy", "configuration", "group")  # a result row's label, by report (a parameter sweep's: its name)
ROWS = ("results", "groups")  # the report's table: one row per group
PLOTS = ("plot", "curves")


def metric_key(text: str) -> str:
    """An MLflow metric name: only letters, digits, ``_ - . / : `` and spaces; 250 characters at most."""
    return re.sub(r"[^\w\-./: ]", "_", text)[:250]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _plain(value: Any) -> Any:
    """A numpy scalar as its Python number; anything else not JSON as text."""
    return value.item() if hasattr(value, "item") else str(value)


def _walk(node: Any, where: str = "") -> Iterator[tuple[str, dict]]:
    """Every mapping in the document with the path to it (``best.vs_runner_up``; a list adds nothing)."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from _walk(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, where)


def _label(row: dict, sweep_type: str | None) -> str | None:
    return next((str(row[k]) for k in (*LABELS, sweep_type) if k and row.get(k) is not None), None)


def report_metrics(document: dict[str, Any]) -> dict[str, float]:
    """The numbers of the report that a parent run shows: tests, ANOVAs, each group's mean accuracy."""
    metrics: dict[str, float] = {}
    for where, node in _walk(document):
        if {"a", "b", "p_value"} <= node.keys():
            for name in TEST_NUMBERS:
                metrics[f"{where}/{node['a']} vs {node['b']}/{name}"] = _number(node.get(name))
        elif where.endswith("anova"):
            for name in ANOVA_NUMBERS:
                metrics[f"{where}/{name}"] = _number(node.get(name))
    for row in next((document[k] for k in ROWS if isinstance(document.get(k), list)), []):
        accuracy = row.get("accuracy")
        accuracy = accuracy.get("mean") if isinstance(accuracy, dict) else accuracy
        if (label := _label(row, document.get("sweep_type"))) is not None:
            metrics[f"accuracy/{label}"] = _number(accuracy)
    return {metric_key(k): v for k, v in metrics.items() if v is not None}


def report_tags(document: dict[str, Any]) -> dict[str, str]:
    best = document.get("best") or {}
    sweep_type = document.get("sweep_type", "aggregate")
    tags = {"best": _label(best, sweep_type), "selected_by": best.get("selected_by"), "sweep_type": sweep_type}
    return {k: str(v) for k, v in tags.items() if v is not None}


def _log(client, run_id: str, document: dict[str, Any], text: str) -> None:
    from mlflow.entities import Metric, RunTag
    from mlflow.utils.time import get_current_time_millis

    now = get_current_time_millis()
    metrics = [Metric(k, v, now, 0) for k, v in report_metrics(document).items()]
    tags = [RunTag(k, v) for k, v in report_tags(document).items()]
    for start in range(0, max(len(metrics), 1), 1000):  # MLflow takes at most 1000 metrics a batch
        client.log_batch(run_id, metrics=metrics[start:start + 1000], tags=tags if start == 0 else [])
    client.log_text(run_id, json.dumps(document, indent=2, default=_plain), "report.json")
    client.log_text(run_id, text, "report.txt")
    rows = next((document[k] for k in ROWS if isinstance(document.get(k), list)), [])
    if rows:
        table = pd.json_normalize(rows).map(lambda v: v if isinstance(v, (str, int, float, bool)) or v is None
                                            else str(v))
        client.log_table(run_id, table, "report_table.json")
    for name in PLOTS:
        if document.get(name) and Path(document[name]).is_file():
            client.log_artifact(run_id, document[name])
    client.set_terminated(run_id, "FINISHED")


def log_report(sweep_dir: Path, document: dict[str, Any], text: str) -> list[str]:
    """Log the report to each MLflow parent run of ``sweep_dir``; what could not be logged, one line each
    (the command reports them after its output, as it does plots it could not write)."""
    parents = recorded_runs(sweep_dir)
    if not parents:
        return []
    try:
        from mlflow import MlflowClient
    except ImportError:
        return ["the report was not logged to MLflow: the mlflow package is missing (pip install -e '.[tracking]')"]
    problems = []
    for uri, run_id in parents.items():
        try:
            _log(MlflowClient(uri), run_id, document, text)
        except Exception as e:  # noqa: BLE001 (the store's own errors: unreachable, locked, the run deleted)
            problems.append(f"the report was not logged to MLflow run {run_id} at {uri}: "
                            f"{type(e).__name__}: {' '.join(str(e).split())[:200]}")
    return problems
