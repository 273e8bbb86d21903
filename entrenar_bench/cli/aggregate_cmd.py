"""``entrenar-bench aggregate DIR``: statistics for any sweep directory, however it was run."""

from __future__ import annotations

import argparse
from pathlib import Path

from entrenar_bench.errors import NoResults, UsageError
from entrenar_bench.cli.options import add_format_option, add_metric_option
from entrenar_bench.cli.output import emit, fail_if_unwritten


def _aggregate(args: argparse.Namespace) -> int:
    from entrenar_bench.aggregate.collect import SweepError, collect  # pandas, scipy: only for this command
    from entrenar_bench.aggregate.report import generic_report
    from entrenar_bench.aggregate.sequential_report import recorded_section
    from entrenar_bench.aggregate.tracking import log_report

    try:
        collection = collect(Path(args.sweep_dir), args.metric)
    except SweepError as e:
        raise UsageError(str(e)) from None
    document, text = generic_report(collection, test="paired" if args.paired else "welch")
    sequential = None if collection.completed.empty else recorded_section(collection.sweep_dir, args.metric)
    if sequential:  # an auto sweep (--runs auto): how it stopped
        document["sequential"], lines, unwritten = sequential
        text, collection.unwritten = "\n".join([text, *lines]), [*collection.unwritten, *unwritten]
    untracked = log_report(collection.sweep_dir, document, text)  # to the sweep's MLflow parent run, if any
    emit(args.format, document, text)
    if collection.completed.empty:
        raise NoResults(f"no run completed in {args.sweep_dir}")
    fail_if_unwritten([*collection.unwritten, *untracked])
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("aggregate", help="Aggregate a sweep directory (any Hydra multirun of entrenar_bench.run)",
                            description="Group runs by resolved config minus the seeds (student and teacher); "
                                        "per-group n, mean, std, 95% t-interval (over per-teacher means when "
                                        "several teachers were used); pairwise Welch t-tests with Holm correction; "
                                        "one-way ANOVA; the best chosen on the deciding metric's validation "
                                        "value (--metric; default: the runs' primary metric).")
    p.add_argument("sweep_dir", metavar="DIR", help="sweep directory (holds one sub-directory per job)")
    p.add_argument("--paired", action="store_true", help="paired t-tests on the seeds (or teachers) both groups share")
    add_metric_option(p)
    add_format_option(p)
    p.set_defaults(handler=_aggregate)
