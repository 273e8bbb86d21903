"""Learning curves: each run's per-epoch ``metrics.csv`` (Lightning's CSVLogger), as mean and 95% band per group.

At each epoch: the mean over the group's runs and the 95% t-interval of that mean (no band from one run).
"""

from __future__ import annotations

import io
import math

import pandas as pd
from scipy import stats as sps

from entrenar_bench.aggregate.collect import Collection
from entrenar_bench.aggregate.metrics import ACCURACY, Metric
from entrenar_bench.files import read_data

METRICS_FILE = "metrics.csv"  # the file name Lightning's CSVLogger writes in its log directory


def curves(metric: Metric = ACCURACY) -> dict[str, str]:
    """The columns drawn (as Lightning logs them) and their labels: training loss, validation ``metric``."""
    return {"train/loss": "training loss (mean per epoch)",
            f"val/{metric.name}": f"validation {metric.name} ({metric.direction})"}


def read_curves(collection: Collection) -> dict[str, pd.DataFrame]:
    """Group label -> the per-epoch rows of its completed runs (``epoch``, ``run`` and the columns of
    :func:`curves` for the collection's metric)."""
    drawn = curves(collection.metric)
    out: dict[str, list[pd.DataFrame]] = {}
    for _, row in collection.completed.iterrows():
        path = collection.sweep_dir / str(row["job"]) / METRICS_FILE
        try:
            frame = pd.read_csv(io.BytesIO(read_data(path)))  # a regular file only: never a FIFO or a link
        except (OSError, ValueError, pd.errors.EmptyDataError):
            continue
        if "epoch" not in frame:
            continue
        columns = [c for c in drawn if c in frame]
        frame = frame[["epoch", *columns]].apply(pd.to_numeric, errors="coerce").dropna(subset=["epoch"])
        frame = frame[["epoch", *columns]].groupby("epoch", as_index=False).first()  # one row per epoch
        out.setdefault(str(row["group"]), []).append(frame.assign(run=str(row["job"])))
    return {label: pd.concat(frames, ignore_index=True) for label, frames in out.items()}


def band(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per epoch: ``mean``, ``low``, ``high`` (95% t-interval over runs; equal to the mean for one run), ``n``."""
    if column not in frame:
        return pd.DataFrame(columns=["epoch", "mean", "low", "high", "n"])
    per_epoch = frame.dropna(subset=[column]).groupby("epoch")[column].agg(["mean", "std", "count"]).reset_index()
    half = [sps.t.ppf(0.975, n - 1) * sd / math.sqrt(n) if n > 1 and sd == sd else 0.0
            for n, sd in zip(per_epoch["count"], per_epoch["std"])]
    return pd.DataFrame({"epoch": per_epoch["epoch"] + 1, "mean": per_epoch["mean"],
                         "low": per_epoch["mean"] - half, "high": per_epoch["mean"] + half, "n": per_epoch["count"]})
