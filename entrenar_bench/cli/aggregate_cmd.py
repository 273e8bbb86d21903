"""``entrenar-bench aggregate DIR``: statistics for any sweep directory, however it was run."""

from __future__ import annotations

import argparse
from pathlib import Path

from entrenar_bench.errors import NoResults, UsageError
from entrenar_bench.cli.options import add_format_option
from entrenar_bench.cli.output import emit


def _aggregate(args: argparse.Namespace) -> int:
    from entrenar_bench.aggregate.collect import SweepError, collect  # pandas, scipy: only for this command
    from entrenar_bench.aggregate.report import generic_report

    try:
        collection = collect(Path(args.sweep_dir))
    except SweepError as e:
        raise UsageError(str(e)) from None
    document, text = generic_report(collection, test="paired" if args.paired else "welch")
    emit(args.format, document, text)
    if collection.completed.empty:
        raise NoResults(f"no run completed in {args.sweep_dir}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("aggregate", help="Aggregate a sweep directory (any Hydra multirun of entrenar_bench.run)",
                            description="Group runs by resolved config minus seed; per-group n, mean, std, 95% "
                                        "t-interval; pairwise Welch t-tests with Holm correction; one-way ANOVA.")
    p.add_argument("sweep_dir", metavar="DIR", help="sweep directory (holds one sub-directory per job)")
    p.add_argument("--paired", action="store_true", help="paired t-tests on the seeds both groups share")
    add_format_option(p)
    p.set_defaults(handler=_aggregate)
