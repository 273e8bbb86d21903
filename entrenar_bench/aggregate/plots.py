"""PNG plots beside the runs: means with 95% t-interval error bars."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _errors(entries: list[dict]) -> tuple[list[float], list[list[float]]]:
    means = [e["accuracy"]["mean"] for e in entries]
    lower = [m - lo if lo is not None else 0.0 for m, (lo, _) in zip(means, (e["accuracy"]["ci95"] for e in entries))]
    upper = [hi - m if hi is not None else 0.0 for m, (_, hi) in zip(means, (e["accuracy"]["ci95"] for e in entries))]
    return means, [lower, upper]


def line_plot(path: Path, xs: list[float], entries: list[dict], xlabel: str, title: str) -> Path:
    """Accuracy against a swept value (temperature, alpha)."""
    means, err = _errors(entries)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(xs, means, yerr=err, marker="o", capsize=3)
    ax.set(xlabel=xlabel, ylabel="test accuracy (mean, 95% CI)", title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def bar_plot(path: Path, labels: list[str], entries: list[dict], title: str) -> Path:
    """Accuracy per configuration (strategies, ablations)."""
    means, err = _errors(entries)
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(labels)), 4))
    ax.bar(range(len(labels)), means, yerr=err, capsize=4, color="tab:blue", alpha=0.8)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    low = min((m - e for m, e in zip(means, err[0])), default=0)
    ax.set_ylim(max(0.0, low - 0.02), min(1.0, max(means, default=1) + max(err[1], default=0) + 0.01))
    ax.set(ylabel="test accuracy (mean, 95% CI)", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
