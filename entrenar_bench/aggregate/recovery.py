"""Recovery of the teacher per group, and the held-out curve against tokens seen with the tokens it took to
reach 50 / 80 / 90 % recovery.

A run's recovery (``run/recovery.py``) is ``(m_before − m_after) / (m_before − m_teacher)`` on the deciding
metric's test value; the teacher's value is that of the run's own teacher (its cache's record), or the sweep's
teachers' mean for a run that used none (``distill=none``). A group's recovery is described over its runs.

The held-out curve (``training/heldout.py``): each run's points ``(tokens, heldout/<metric>)`` on a fixed
validation subset. A group's curve is, at each evaluation point k (the same token thresholds in every run of a
group), the mean over runs of the value, with its 95 % t-interval, at the mean of the runs' tokens. Its recovery
at k is ``(c_0 − c_k) / (c_0 − c_teacher)``, with c_0 the mean curve's first point (0 tokens) and c_teacher the
teacher's value on the same subset (recorded by the runs that had a teacher). The tokens to reach a level r are
interpolated linearly between the last point below r and the first at or above it; "not reached" (None) where
the curve never gets there.
"""

from __future__ import annotations

import io
import math
from typing import Any

import pandas as pd
from scipy import stats as sps

from entrenar_bench.aggregate.collect import Collection
from entrenar_bench.aggregate.curves import METRICS_FILE
from entrenar_bench.aggregate.metrics import BEFORE_PREFIX
from entrenar_bench.aggregate.stats import describe
from entrenar_bench.files import read_data
from entrenar_bench.run.recovery import LEVELS, recovery
from entrenar_bench.training.curve_names import PREFIX, TOKENS


def _teacher_values(reference: dict[str, Any] | None) -> tuple[dict[str, float], float | None]:
    """Each teacher's (by cache) deciding-metric value, and their mean."""
    if not reference:
        return {}, None
    values = {t["cache"]: t["metric"] for t in reference["teachers"] if t.get("metric") is not None}
    return values, reference["metric"]["mean"]


def run_recoveries(collection: Collection, reference: dict[str, Any] | None) -> pd.Series:
    """Each completed run's recovery on the deciding metric (NaN where it has no start or no teacher value)."""
    done = collection.completed
    before_column = f"{BEFORE_PREFIX}{collection.metric.name}"
    if before_column not in done or done.empty:
        return pd.Series(float("nan"), index=done.index)
    per_cache, mean = _teacher_values(reference)
    out = []
    for _, row in done.iterrows():
        cache = row.get("teacher_cache")
        teacher = per_cache.get(cache, mean) if isinstance(cache, str) else mean
        before, after = row.get(before_column), row.get(collection.metric.column)
        value = recovery(*(float(v) if v is not None and pd.notna(v) else None for v in (before, after, teacher)))
        out.append(float("nan") if value is None else value)
    return pd.Series(out, index=done.index)


def group_recovery(collection: Collection, reference: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Group label -> describe() of its runs' recoveries (n 0 where none could be computed)."""
    values = run_recoveries(collection, reference)
    done = collection.completed
    return {str(label): describe(values.loc[rows.index].dropna().tolist())
            for label, rows in done.groupby("group", sort=False)}


def read_token_curves(collection: Collection) -> dict[str, pd.DataFrame]:
    """Group label -> its runs' held-out points: ``run``, ``k`` (the point's order in its run), ``tokens``,
    ``value`` (the deciding metric on the subset)."""
    column = f"{PREFIX}{collection.metric.name}"
    out: dict[str, list[pd.DataFrame]] = {}
    for _, row in collection.completed.iterrows():
        try:
            frame = pd.read_csv(io.BytesIO(read_data(collection.sweep_dir / str(row["job"]) / METRICS_FILE)))
        except (OSError, ValueError, pd.errors.EmptyDataError):
            continue
        if TOKENS not in frame or column not in frame:
            continue
        points = frame[[TOKENS, column]].apply(pd.to_numeric, errors="coerce").dropna()
        points = points.drop_duplicates(TOKENS).sort_values(TOKENS)
        if points.empty:
            continue
        out.setdefault(str(row["group"]), []).append(pd.DataFrame(
            {"run": str(row["job"]), "k": range(len(points)), "tokens": points[TOKENS].to_numpy(),
             "value": points[column].to_numpy()}))
    return {label: pd.concat(frames, ignore_index=True) for label, frames in out.items()}


def token_band(points: pd.DataFrame) -> pd.DataFrame:
    """Per evaluation point: ``tokens`` (mean over runs), ``mean``, ``low``, ``high`` (95 % t-interval of the
    mean; the mean for one run) and ``n``."""
    per = points.groupby("k").agg(tokens=("tokens", "mean"), mean=("value", "mean"), std=("value", "std"),
                                  n=("value", "count")).reset_index()
    half = [sps.t.ppf(0.975, n - 1) * sd / math.sqrt(n) if n > 1 and sd == sd else 0.0
            for n, sd in zip(per["n"], per["std"])]
    return pd.DataFrame({"tokens": per["tokens"], "mean": per["mean"], "low": per["mean"] - half,
                         "high": per["mean"] + half, "n": per["n"]})


def curve_teacher(collection: Collection) -> float | None:
    """The teacher's value on the curves' subset: the mean of what the runs with a teacher recorded."""
    done = collection.completed
    if "curve_teacher" not in done:
        return None
    values = pd.to_numeric(done["curve_teacher"], errors="coerce").dropna()
    return float(values.mean()) if len(values) else None


def tokens_to_reach(band: pd.DataFrame, teacher: float | None, levels=LEVELS) -> dict[str, float | None]:
    """``{"50%": tokens or None, ...}``: the tokens at which the mean curve's recovery first reaches each level
    (the module's interpolation); all None without a teacher value or a start."""
    out: dict[str, float | None] = {f"{round(level * 100)}%": None for level in levels}
    if band.empty or teacher is None:
        return out
    start = float(band["mean"].iloc[0])
    shares = [recovery(start, float(v), teacher) for v in band["mean"]]
    if shares[0] is None:
        return out
    tokens = band["tokens"].tolist()
    for level in levels:
        for i, share in enumerate(shares):
            if share >= level:
                if i == 0:
                    out[f"{round(level * 100)}%"] = tokens[0]
                else:
                    prev = shares[i - 1]
                    fraction = (level - prev) / (share - prev) if share != prev else 1.0
                    out[f"{round(level * 100)}%"] = tokens[i - 1] + fraction * (tokens[i] - tokens[i - 1])
                break
    return out


def tokens_text(value: float | None) -> str:
    """``12,400`` tokens, or ``not reached``."""
    return "not reached" if value is None else f"{value:,.0f}"
