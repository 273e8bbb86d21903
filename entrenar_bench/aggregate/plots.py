"""PNG plots beside the runs: every run as a point, the mean and its 95% t-interval (an accuracy's clipped to
[0, 1], its range), the teacher as a reference line; learning curves; the cost-performance front. The y axis
is the deciding metric (aggregate/metrics.py), named with its direction.

No bars: a bar starting at a truncated axis exaggerates gaps, one starting at 0 hides them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import EngFormatter, MaxNLocator  # noqa: E402

from entrenar_bench.aggregate.curves import band, curves  # noqa: E402
from entrenar_bench.aggregate.metrics import ACCURACY, Metric  # noqa: E402
from entrenar_bench.files import write_atomic  # noqa: E402


def ylabel(metric: Metric = ACCURACY) -> str:
    """``test accuracy (runs; mean, 95% CI)``; other metrics with their direction."""
    direction = "" if metric == ACCURACY else f", {metric.direction}"
    return f"test {metric.name} (runs; mean, 95% CI{direction})"


def clipped_ci(entry: dict, metric: Metric = ACCURACY) -> tuple[float, float]:
    """The 95% CI of ``entry["metric"]``'s mean (clipped to [0, 1] for an accuracy); the mean itself where there
    is none (one run)."""
    mean = entry["metric"]["mean"]
    low, high = entry["metric"]["ci95"]
    low, high = mean if low is None else low, mean if high is None else high
    return (max(0.0, low), min(1.0, high)) if metric.bounded else (low, high)


def _save(fig, path: Path) -> Path:
    """Written atomically: a full disk or a read-only folder leaves no empty or partial PNG (OSError)."""
    try:
        fig.tight_layout()
        write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=120))
    finally:
        plt.close(fig)
    return path


def _reference(ax, reference: dict | None, baselines: dict | None = None) -> None:
    """The teacher's mean test value of the deciding metric as a dashed line; a language model's uniform and
    unigram cross-entropies (``baselines``, where the metric is the loss) as dotted ones."""
    if reference and reference["metric"]["mean"] is not None:
        k = len(reference["teachers"])
        ax.axhline(reference["metric"]["mean"], color="grey", linestyle="--", linewidth=1,
                   label=f"teacher ({k} teacher{'s' if k > 1 else ''}, mean)")
    _baselines(ax, baselines)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)


def _baselines(ax, baselines: dict | None, key: str = "unigram") -> None:
    """``uniform (ln V)`` and the unigram model (``key``: its test or validation value) as dotted lines."""
    if not baselines:
        return
    ax.axhline(baselines["uniform"], color="tab:red", linestyle=":", linewidth=1, label="uniform (ln V)")
    ax.axhline(baselines[key], color="tab:orange", linestyle=":", linewidth=1, label="unigram (add-one)")


def runs_plot(path: Path, entries: Sequence[dict], title: str, labels: Sequence[str] | None = None,
              xs: Sequence[float] | None = None, xlabel: str | None = None, reference: dict | None = None,
              metric: Metric = ACCURACY, baselines: dict | None = None) -> Path:
    """Each entry's runs (``metric_values``) as points, its mean (``metric``) as a marker and its CI as an error
    bar; against ``xs`` (a swept value, means joined by a line) or at evenly spaced ``labels`` (strategies,
    ablations)."""
    positions = list(xs) if xs is not None else list(range(len(entries)))
    spread = (min(abs(b - a) for a, b in zip(positions, positions[1:])) if len(positions) > 1 else 1.0) * 0.08
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(entries)), 4.2))
    for x, entry in zip(positions, entries):
        values = entry.get("metric_values") or []
        offsets = [spread * (2 * i / (len(values) - 1) - 1) if len(values) > 1 else 0.0 for i in range(len(values))]
        ax.scatter([x + o for o in offsets], values, s=14, color="tab:blue", alpha=0.45, zorder=2)
    means = [e["metric"]["mean"] for e in entries]
    cis = [clipped_ci(e, metric) for e in entries]
    ax.errorbar(positions, means, yerr=[[m - lo for m, (lo, _) in zip(means, cis)],
                                        [hi - m for m, (_, hi) in zip(means, cis)]],
                fmt="o-" if xs is not None else "o", color="black", capsize=4, markersize=5, zorder=3)
    if xs is None:
        ax.set_xticks(positions, list(labels or []), rotation=20, ha="right")
        ax.set_xlim(-0.6, len(entries) - 0.4)
    ax.set(xlabel=xlabel or "", ylabel=ylabel(metric), title=title)
    ax.grid(alpha=0.3)
    _reference(ax, reference, baselines)
    return _save(fig, path)


def tokens_panel(ax, bands: dict[str, pd.DataFrame], metric: Metric, teacher: float | None,
                 baselines: dict | None) -> None:
    """Each group's held-out ``metric`` against training tokens seen (``aggregate/recovery.token_band``: mean
    and 95% band over runs), the teacher on the same subset as a dashed line, the validation baselines dotted."""
    for group, b in bands.items():
        line, = ax.plot(b["tokens"], b["mean"], marker="." if len(b) < 30 else None, label=group)
        ax.fill_between(b["tokens"], b["low"], b["high"], color=line.get_color(), alpha=0.2)
    if teacher is not None:
        ax.axhline(teacher, color="grey", linestyle="--", linewidth=1, label="teacher")
    _baselines(ax, baselines, "val_unigram")
    ax.set(xlabel="training tokens seen", ylabel=f"held-out {metric.name} (fixed validation subset)")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 200k, 1.5M: readable at any budget
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def curves_plot(path: Path, runs: dict[str, pd.DataFrame], title: str, metric: Metric = ACCURACY,
                token_bands: dict[str, pd.DataFrame] | None = None, teacher: float | None = None,
                baselines: dict | None = None) -> Path:
    """One panel per curve (training loss, validation ``metric``): each group's mean over runs per epoch, with
    its 95% band; where the runs drew one, a third: the held-out curve against tokens (:func:`tokens_panel`)."""
    drawn = curves(metric)
    fig, axes = plt.subplots(1, len(drawn) + bool(token_bands), figsize=(11 + 5.5 * bool(token_bands), 4))
    if token_bands:
        tokens_panel(axes[-1], token_bands, metric, teacher, baselines)
    for ax, (column, label) in zip(axes, drawn.items()):
        for group, frame in runs.items():
            b = band(frame, column)
            if b.empty:
                continue
            bounded = column.startswith("val/") and metric.bounded
            low, high = (b["low"].clip(0, 1), b["high"].clip(0, 1)) if bounded else (b["low"], b["high"])
            line, = ax.plot(b["epoch"], b["mean"], marker="." if len(b) < 30 else None, label=group)
            ax.fill_between(b["epoch"], low, high, color=line.get_color(), alpha=0.2)
        ax.set(xlabel="epoch", ylabel=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    if handles:
        axes[0].legend(handles, names, fontsize=8)
    fig.suptitle(f"{title}: mean and 95% band over runs")
    return _save(fig, path)


def pareto_plot(path: Path, points: Sequence[dict], winner: str | None, title: str,
                metric: Metric = ACCURACY) -> Path:
    """Cost against the deciding metric: each configuration's runs and mean (95% CI), the Pareto front as a step
    line, the cost-efficiency winner labelled. ``points``: ``name``, ``cost``, ``metric`` (describe()),
    ``values`` (the runs' values), ``pareto``."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for p in points:
        ax.scatter([p["cost"]] * len(p["values"]), p["values"], s=12, color="tab:blue", alpha=0.4, zorder=2)
        low, high = clipped_ci(p, metric)
        mean = p["metric"]["mean"]
        ax.errorbar([p["cost"]], [mean], yerr=[[mean - low], [high - mean]], fmt="o",
                    color="tab:red" if p["pareto"] else "black", capsize=4, zorder=3)
        ax.annotate(p["name"] + ("  (cost-efficiency winner)" if p["name"] == winner else ""), (p["cost"], mean),
                    textcoords="offset points", xytext=(6, 6), fontsize=8,
                    fontweight="bold" if p["name"] == winner else "normal")
    front = sorted((p for p in points if p["pareto"]), key=lambda p: p["cost"])
    if front:
        arrow = "↓" if metric.lower_is_better else "↑"
        ax.step([p["cost"] for p in front], [p["metric"]["mean"] for p in front], where="post", color="tab:red",
                linewidth=1, label=f"Pareto front (cost ↓, {metric.name} {arrow})")
        ax.legend(loc="upper right" if metric.lower_is_better else "lower right", fontsize=8)
    ax.set(xlabel="cost (USD)", ylabel=ylabel(metric), title=title)
    ax.grid(alpha=0.3)
    return _save(fig, path)
