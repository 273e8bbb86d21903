"""The metric that decides: the recorded metric that selects the best, is tested, plotted and priced, and its direction.

A run records its test values in ``result.json`` ``metrics`` under their names (``accuracy``, ``loss``,
``perplexity``, ``teacher_kl``, ...) and its validation values under ``val_<name>``; a run that knows its
task's primary metric records it as ``primary_metric: {"name": ..., "lower_is_better": ...}`` (accuracy for
classification; the held-out cross-entropy ``loss`` for language models). Selection reads ``val_<name>``,
reports and tests read ``<name>`` (aggregate/selection.py).

The default is the runs' primary metric; runs that record none are judged on accuracy, higher is better.
A metric's direction is the one its task declares and the runs record (``metric_directions``: ``{name:
lower_is_better}``, tasks/*.py ``recorded_metrics``), else this table for runs recorded before that: ``loss``,
``perplexity``, ``kl``, ``sample_invalid`` and names ending in ``_loss``, ``_kl`` or ``_perplexity`` are
lower-is-better; every other metric is higher-is-better (a test checks the table against every task's
declarations).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from entrenar_bench.errors import UsageError
from entrenar_bench.tasks.base import MetricSpec

COLUMN_PREFIX = "metric:"  # the collection's column of each recorded metric (aggregate/collect.py)
TEACHER_PREFIX = "teacher_metric:"  # ... and of each metric a run measured of its teacher
DIRECTION_PREFIX = "lower:"  # the collection's column of each metric's recorded direction (lower_is_better)
BEFORE_PREFIX = "before:"  # ... and of each measured before training (a pruned student: right after pruning)
LOWER_NAMES = ("loss", "perplexity", "kl", "sample_invalid")
LOWER_SUFFIXES = ("_loss", "_kl", "_perplexity")
HEADERS = {"accuracy": "Accuracy", "loss": "Loss", "perplexity": "Perplexity", "teacher_kl": "Teacher KL",
           "truth_kl": "Truth KL", "bayes_accuracy": "Bayes Acc", "rouge_l": "ROUGE-L",
           "sample_truth_kl": "KL to the truth", "sample_invalid": "impossible tokens"}
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
VALIDATION = "val_"


def lower_is_better(name: str) -> bool:
    """The direction table: losses, perplexities, divergences and the share of impossible tokens go down."""
    return name in LOWER_NAMES or name.endswith(LOWER_SUFFIXES)


def recorded_direction(runs: Any, name: str) -> bool:
    """Whether ``name`` is lower-is-better as the runs (a DataFrame of the collection) recorded it (the most
    common answer), else as the table says."""
    column = f"{DIRECTION_PREFIX}{name}"
    found = Counter(v for v in runs[column] if isinstance(v, bool)) if column in runs else Counter()
    return found.most_common(1)[0][0] if found else lower_is_better(name)


@dataclass(frozen=True)
class Metric(MetricSpec):
    """A recorded metric and its direction (a task's ``primary_metric``), as reports name and rank it."""

    @property
    def val_name(self) -> str:
        return f"{VALIDATION}{self.name}"

    @property
    def column(self) -> str:
        return f"{COLUMN_PREFIX}{self.name}"

    @property
    def val_column(self) -> str:
        return f"{COLUMN_PREFIX}{self.val_name}"

    @property
    def direction(self) -> str:
        return "lower is better" if self.lower_is_better else "higher is better"

    @property
    def header(self) -> str:
        return HEADERS.get(self.name, self.name)

    @property
    def val_header(self) -> str:
        return "Val Acc" if self.name == "accuracy" else f"Val {self.header}"

    @property
    def bounded(self) -> bool:
        """A proportion in [0, 1] (its intervals are shown clipped to that range)."""
        return self.name == "accuracy" or self.name.endswith("_accuracy")

    def goodness(self, value: float) -> float:
        """Larger is better: the value itself, or its reciprocal when lower is better (1 / perplexity is the
        geometric-mean probability of a target token)."""
        if not self.lower_is_better:
            return value
        return 1.0 / value if value > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return self.as_record()

    def described(self) -> str:
        return f"{self.name} ({self.direction})"


ACCURACY = Metric("accuracy")
LOSS = Metric("loss", lower_is_better=True)


def tie_breaker(metric: Metric) -> Metric:
    """What breaks a tie on ``metric``: the loss, or (when the metric is a loss or its perplexity) the accuracy."""
    return ACCURACY if metric.name in ("loss", "perplexity") else LOSS


def check_name(name: str) -> str:
    """A metric name as ``--metric`` takes it (before any run exists: only its form can be checked)."""
    if not NAME.fullmatch(name):
        raise UsageError(f"--metric {name!r}: a metric name is letters, digits and underscores (accuracy, loss, "
                         "perplexity, or another metric the runs record)")
    if name.startswith(VALIDATION):
        raise UsageError(f"--metric {name}: name the test metric ({name[len(VALIDATION):]}); the best is chosen on "
                         f"its validation value {name} by itself")
    return name


def recorded_names(runs: Any) -> list[str]:
    """The test metrics that completed runs (a DataFrame of the collection) recorded: accuracy and loss first."""
    names = {c[len(COLUMN_PREFIX):] for c in runs.columns if c.startswith(COLUMN_PREFIX) and runs[c].notna().any()}
    tests = {n for n in names if not n.startswith(VALIDATION)}
    return sorted(tests, key=lambda n: (n not in ("accuracy", "loss"), n != "accuracy", n))


def primary(runs: Any, problems: list[str] | None = None) -> Metric | None:
    """The primary metric the runs recorded (the most common one, with a problem noted if they disagree)."""
    if "primary_metric" not in runs:
        return None
    found = Counter((n, bool(b)) for n, b in zip(runs["primary_metric"], runs["primary_lower_is_better"])
                    if isinstance(n, str))
    if not found:
        return None
    (name, lower), _ = found.most_common(1)[0]
    if len(found) > 1 and problems is not None:
        problems.append(f"the runs record different primary metrics ({', '.join(sorted(n for n, _ in found))}); "
                        f"judged on {name}")
    return Metric(name, lower)


def choose(runs: Any, name: str | None = None, problems: list[str] | None = None) -> Metric:
    """The metric that decides for ``runs`` (the completed runs' DataFrame): ``name`` (UsageError naming the
    known ones if these runs did not record it), else their primary metric, else accuracy. With no completed run
    there is nothing to check a name against (the reports then say that no run completed)."""
    if runs.empty:
        return ACCURACY if name is None else Metric(name, recorded_direction(runs, name))
    known = recorded_names(runs)
    recorded_primary = primary(runs, problems)
    if name is None:
        if recorded_primary is None:
            return ACCURACY
        if recorded_primary.name not in known:
            if problems is not None:
                problems.append(f"the runs' primary metric {recorded_primary.name!r} is not among their metrics "
                                f"({', '.join(known)}); judged on accuracy (choose another with --metric)")
            return ACCURACY
        return recorded_primary
    elif name not in known:
        raise UsageError(f"--metric {name}: not recorded by these runs; known: {', '.join(known) or 'none'}")
    if recorded_primary is not None and recorded_primary.name == name:
        return recorded_primary
    return Metric(name, recorded_direction(runs, name))
