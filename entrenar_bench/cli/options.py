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


def add_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format: text, json (default: text)")


def add_resume_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resume", metavar="DIR",
                        help="rerun an interrupted sweep in DIR: completed runs are kept, failed or missing ones run")


def add_artifact_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--artifact", metavar="FILE",
                        help="research artifact (from `research init`) to record this sweep in")


def run_or_resume(args: argparse.Namespace, task_name: str, overrides: Sequence[str],
                  preload: Sequence[str] = ()) -> Path:
    """A new ``task_name`` sweep with ``overrides``, or, with ``--resume DIR``, the sweep recorded in DIR."""
    from entrenar_bench.sweep.launch import run_sweep
    from entrenar_bench.sweep.resume import resume_sweep

    if not getattr(args, "resume", None):
        return run_sweep(task_name, overrides, preload=preload)
    if getattr(args, "overrides", None):
        raise UsageError("--resume reruns the sweep exactly as recorded; drop the overrides after --")
    return resume_sweep(args.resume, task_name, preload)
