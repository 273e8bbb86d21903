"""``--runs auto`` on the sweep commands: its options, their checks (one line, exit 2), and the run."""

from __future__ import annotations

import argparse
from pathlib import Path

from entrenar_bench.aggregate.sequential_design import SPENDING, Design
from entrenar_bench.cli.options import USED_ON_RESUME, number, positive_int, refuse_ignored
from entrenar_bench.errors import UsageError
from entrenar_bench.sweep.rounds import SEQUENTIAL_PLAN, is_sequential

AUTO_OPTIONS = ("max_runs", "min_runs", "look_every", "mde", "spending")


def runs_value(text: str) -> int | str:
    """``--runs``: a positive integer, or ``auto``."""
    return "auto" if text.strip().lower() == "auto" else positive_int(text)


def add_auto_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("--runs auto", "seeds added in rounds until each comparison is settled "
                                      "(group-sequential tests, Holm; parameter sweeps drop points worse than "
                                      "the best)")
    group.add_argument("--max-runs", type=positive_int, metavar="N",
                       help="most runs a group gets (required with --runs auto)")
    group.add_argument("--min-runs", type=positive_int, default=3, metavar="N",
                       help="runs a group gets before the first look (default: 3)")
    group.add_argument("--look-every", type=positive_int, default=1, metavar="K",
                       help="runs added to each running group between looks (default: 1)")
    group.add_argument("--mde", type=number, metavar="D",
                       help="futility: stop a comparison once its difference is shown smaller than D (in the "
                            "metric's units; default: no futility stop)")
    group.add_argument("--spending", choices=SPENDING, default="obf",
                       help="alpha spending: Lan–DeMets O'Brien–Fleming type (obf, default) or Pocock type")


def auto_design(args: argparse.Namespace) -> Design | None:
    """The design of an auto sweep, checked; None for a fixed ``--runs N`` (where the auto options are refused)."""
    given = set(getattr(args, "given", ()))
    if args.runs != "auto":
        stray = [name for name in AUTO_OPTIONS if name in given]
        if stray:
            raise UsageError(f"--{stray[0].replace('_', '-')} applies only with --runs auto")
        return None
    if args.resume:
        if not is_sequential(Path(args.resume)):
            raise UsageError(f"--resume {args.resume}: not an auto sweep (no {SEQUENTIAL_PLAN}: a fixed --runs sweep); "
                             "resume it without --runs auto, or start a new auto sweep")
        return None
    if args.max_runs is None:
        raise UsageError("--runs auto needs --max-runs N, the most runs a group may get")
    if getattr(args, "teachers", 1) != 1:
        raise UsageError("--runs auto with --teachers K is not supported: the looks count seeds of one teacher")
    return Design(args.max_runs, args.min_runs, args.look_every, args.mde, spending=args.spending).check()


def resuming_auto(args: argparse.Namespace) -> bool:
    """``--resume DIR`` of an auto sweep (with or without ``--runs auto``): continued as recorded."""
    if not (args.resume and is_sequential(Path(args.resume))):
        return False
    refuse_ignored(args, USED_ON_RESUME | {"runs"}, "--resume continues the auto sweep as recorded")
    if args.overrides:
        raise UsageError(f"--resume continues the auto sweep as recorded, so {args.overrides[0]!r} would be ignored; "
                         "drop it, or start a new sweep")
    return True
