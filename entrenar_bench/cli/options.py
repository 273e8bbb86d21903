"""Options shared by the commands, and the one rule for running or resuming a sweep."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

from entrenar_bench.errors import UsageError

FORMATS = ("text", "json")
OVERRIDES_EPILOG = "Hydra overrides after a lone `--` are passed through (e.g. -- data=mnist1d launcher=joblib)."


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def number(text: str) -> float:
    """A finite number (``inf`` and ``nan`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def metric_name(text: str) -> str:
    """``--metric``'s form, checked before anything runs (whether the runs record it is checked once they exist)."""
    from entrenar_bench.aggregate.metrics import check_name  # no pandas: the module imports only errors
    from entrenar_bench.errors import UsageError

    try:
        return check_name(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e).split(": ", 1)[1]) from None


def add_metric_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metric", type=metric_name, metavar="NAME",
                        help="the metric that decides (best, tests, front, plots): accuracy, loss, perplexity or any "
                             "other metric the runs record; the best is chosen on its validation value (default: the "
                             "task's primary metric: accuracy for classification, loss, the held-out cross-entropy, "
                             "for language models)")


def add_memory_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-memory", type=number, metavar="GB",
                        help="refuse, before anything runs, a configuration whose estimated peak memory (student, "
                             "gradients, optimiser, an online teacher, activations, logits, the store's batch) is "
                             "larger (limits.max_memory_gb; each run records its estimate beside its measured peak)")


def memory_overrides(args: argparse.Namespace) -> list[str]:
    """``--max-memory GB`` as the override the jobs read."""
    limit = getattr(args, "max_memory", None)
    return [] if limit is None else [f"limits.max_memory_gb={limit}"]


def add_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format: text, json (default: text)")


def add_resume_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resume", metavar="DIR",
                        help="rerun an interrupted sweep in DIR: completed runs are kept, failed or missing ones run")


def add_artifact_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--artifact", metavar="FILE",
                        help="research artifact (from `research init`) to record this sweep in")


# What still matters when a sweep is resumed: where and how to report, and the artifact to link it to.
# Any other option (--runs, --strategies, --start, --configs, ...) plans a sweep and would be ignored.
USED_ON_RESUME = {"resume", "format", "artifact", "gpu", "objectives", "metric"}


def refuse_ignored(args: argparse.Namespace, used: set[str], why: str) -> None:
    """Refuse the options the user gave (``args.given``) that are not ``used``, naming them and ``why``."""
    ignored = sorted(set(getattr(args, "given", ())) - used - {"handler", "command", "research_command"})
    if ignored:
        names = ", ".join(f"--{'from' if name == 'from_dir' else name.replace('_', '-')}" for name in ignored)
        raise UsageError(f"{why}, so {names} would be ignored; drop {'it' if len(ignored) == 1 else 'them'}")


def check_resume_options(args: argparse.Namespace) -> None:
    refuse_ignored(args, USED_ON_RESUME, "--resume reruns the sweep as recorded (start a new sweep to change it)")


def check_runs(runs: int, overrides: Sequence[str]) -> None:
    """``--runs`` within ``limits.max_runs``, before a seed list too long to parse is even written."""
    from entrenar_bench.sweep.compose import max_runs

    limit = max_runs(overrides)
    if runs > limit:
        raise UsageError(f"--runs {runs} is more than limits.max_runs={limit} runs per sweep "
                         "(raise it: -- limits.max_runs=N)")


def run_or_resume(args: argparse.Namespace, task_name: str, overrides: Sequence[str],
                  preload: Sequence[str] = ()) -> Path:
    """A new ``task_name`` sweep with ``overrides``, or, with ``--resume DIR``, the sweep recorded in DIR
    (``overrides``, then, are recorded ones the user repeats to allow them: see sweep/resume.py)."""
    from entrenar_bench.sweep.launch import run_sweep
    from entrenar_bench.sweep.resume import resume_sweep

    if not getattr(args, "resume", None):
        return run_sweep(task_name, [*overrides, *memory_overrides(args)], preload=preload)
    check_resume_options(args)
    return resume_sweep(args.resume, task_name, preload, repeated=list(overrides))
