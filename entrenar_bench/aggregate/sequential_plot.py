"""``sequential.png``: where each group of an auto sweep stopped. Every run of a group is a point at its seed's
height (the metric), and the group's last look is marked by why it stopped: dropped (worse than the best, or
different from the baseline), futility, undecided at the maximum, or the best/baseline kept to the end."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from entrenar_bench.aggregate.metrics import Metric
from entrenar_bench.aggregate.plots import _save, plt
from entrenar_bench.aggregate.sequential import RACING

STYLES = {"efficacy": ("tab:red", "x", "boundary crossed"), "futility": ("tab:orange", "s", "futility"),
          "max_runs": ("tab:gray", "o", "max runs, undecided"), "best": ("tab:green", "*", "kept to the end"),
          "running": ("tab:blue", "o", "running")}


def sequential_plot(path: Path, samples: Mapping[str, Sequence[float]], document: Mapping[str, Any],
                    metric: Metric) -> Path:
    """The runs each group got (x: group, y: metric), the mean of those runs marked by the group's verdict."""
    status = {c["group"]: c["status"] for c in document["comparisons"]}
    if document.get("reference") is not None:
        status.setdefault(document["reference"], "best")
    racing = document["mode"] == RACING
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(samples)), 4.2))
    seen = set()
    for x, (group, values) in enumerate(samples.items()):
        used = np.asarray(values[:document["runs"].get(group, 0)], float)
        used = used[np.isfinite(used)]
        ax.scatter([x] * len(used), used, s=14, color="tab:blue", alpha=0.45, zorder=2)
        color, marker, label = STYLES.get(status.get(group, "best"), STYLES["running"])
        label = "dropped: worse than the best" if racing and status.get(group) == "efficacy" else label
        if len(used):
            ax.scatter([x], [used.mean()], s=90, color=color, marker=marker, zorder=3,
                       label=None if label in seen else label)
            seen.add(label)
        ax.annotate(f"{len(used)} runs", (x, 0), xycoords=("data", "axes fraction"), xytext=(0, 3),
                    textcoords="offset points", ha="center", fontsize=7)
    ax.set_xticks(range(len(samples)), list(samples), rotation=20, ha="right")
    ax.set(ylabel=f"test {metric.name} ({metric.direction})",
           title=f"--runs auto: where each group stopped ({document['mode']})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
