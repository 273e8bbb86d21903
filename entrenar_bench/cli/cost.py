"""``cost-performance`` and ``recommend``: measured runs priced on a GPU cost model.

The handlers import the analysis stack (pandas, scipy, statsmodels) when they run, so that
``entrenar-bench``'s other commands start without it.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from entrenar_bench.cli import options
from entrenar_bench.cli.output import emit
from entrenar_bench.errors import UsageError
from entrenar_bench.cost.configs import BENCH, DEFAULT_CONFIGS, read_configurations
from entrenar_bench.cost.model import PREFIX, REFERENCE, CostModel, CostModelError, known_pricings
from entrenar_bench.cost.analysis import DEFAULT_OBJECTIVES, METRIC, OBJECTIVES
from entrenar_bench.research.link import check_artifact, link_sweep
from entrenar_bench.sweep.commands import bench_runs

GPU_EPILOG = ("Cost-model overrides after `--` go to the GPU, not the runs: "
              "--gpu custom -- pricing.cost_per_hour=1.2 pricing.memory_gb=24 pricing.performance_factor=0.5")


def split_pricing_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """``pricing.*`` overrides set the cost model; the rest go to the runs."""
    pricing = [o for o in overrides if o.startswith(PREFIX)]
    return pricing, [o for o in overrides if not o.startswith(PREFIX)]


def analysis_for(args: argparse.Namespace, pricing_overrides: list[str]):
    """The cost-performance analysis on the chosen GPU's cost model."""
    from entrenar_bench.cost.analysis import CostPerformanceAnalysis

    try:
        return CostPerformanceAnalysis(CostModel.named(args.gpu, pricing_overrides))
    except CostModelError as e:
        raise UsageError(f"--gpu: {e}") from None


def _objectives(args: argparse.Namespace, metric=None) -> tuple[str, ...]:
    """``--objectives`` checked: before the runs exist against ``--metric`` (if given), after against the
    deciding metric."""
    from entrenar_bench.aggregate.metrics import Metric, lower_is_better
    from entrenar_bench.cost.analysis import check_objectives

    if metric is None and args.metric:
        metric = Metric(args.metric, lower_is_better(args.metric))
    try:
        return check_objectives(args.objectives, metric)
    except ValueError as e:
        raise UsageError(f"--objectives: {e}") from None


def _cost_performance(args: argparse.Namespace) -> int:
    from entrenar_bench.cost.analysis import metric_of
    from entrenar_bench.cost.report import cost_performance_report
    from entrenar_bench.cost.study import load_points, run_study

    pricing_overrides, overrides = split_pricing_overrides(args.overrides)
    analysis = analysis_for(args, pricing_overrides)
    _objectives(args)
    if args.from_dir:
        if overrides or args.resume or args.artifact:
            raise UsageError("--from reads a finished sweep; drop --resume, --artifact and the overrides after --")
        options.refuse_ignored(args, {"from_dir", "gpu", "objectives", "format", "metric"},
                               "--from reads a finished sweep")
        sweep_dir = Path(args.from_dir)
    else:
        if args.artifact:
            check_artifact(Path(args.artifact))
        started = datetime.now(timezone.utc)
        if args.resume:
            sweep_dir = options.run_or_resume(args, BENCH, overrides)
        else:
            options.check_runs(args.runs, overrides)
            configurations = read_configurations(args.configs)
            sweep_dir = run_study(configurations, args.runs, overrides, source=str(args.configs))
        if args.artifact:
            link_sweep(Path(args.artifact), sweep_dir, started, ["entrenar-bench", *args.argv])
    points, collection = load_points(sweep_dir, given=bool(args.from_dir), metric=args.metric)
    objectives = _objectives(args, metric_of(points))
    priced = analysis.analyze(points, objectives)
    document, text = cost_performance_report(analysis, priced, objectives, collection)
    emit(args.format, document, text)
    return 0


CONSTRAINTS = ("max_cost", "min_accuracy", "max_time", "max_memory", "max_loss", "max_perplexity", "min_metric",
               "max_metric")


def _as_flag(error: ValueError) -> UsageError:
    """``max_cost must be >= 0`` -> ``--max-cost must be >= 0`` (``max_loss: ...`` -> ``--max-loss: ...``)."""
    name, rest = str(error).split(" ", 1)
    return UsageError(f"--{name.replace('_', '-')} {rest}")


def _constraints(args: argparse.Namespace):
    from entrenar_bench.cost.analysis import Constraints

    try:
        return Constraints(**{name: getattr(args, name) for name in CONSTRAINTS})
    except ValueError as e:
        raise _as_flag(e) from None


def _recommend(args: argparse.Namespace) -> int:
    from entrenar_bench.cost.analysis import check_measured
    from entrenar_bench.cost.report import recommendation_report
    from entrenar_bench.cost.study import latest_sweep, load_points, run_study

    constraints = _constraints(args)
    pricing_overrides, overrides = split_pricing_overrides(args.overrides)
    analysis = analysis_for(args, pricing_overrides)
    reading = {"gpu", "format", "metric", *CONSTRAINTS}
    if args.from_dir:
        if overrides:
            raise UsageError("--from reads a finished sweep; drop the run overrides after --")
        options.refuse_ignored(args, {"from_dir", *reading}, "--from reads a finished sweep")
        sweep_dir, how = Path(args.from_dir), "--from"
    else:
        sweep_dir, how = latest_sweep(overrides), "latest cost-performance sweep"
        if sweep_dir is not None:
            options.refuse_ignored(args, reading, f"recommend reads the latest cost-performance sweep ({sweep_dir})")
        if sweep_dir is None:
            options.check_runs(args.runs, overrides)
            print("recommend: no cost-performance sweep under outputs/; running the default study first "
                  f"({DEFAULT_CONFIGS.name}, {args.runs} runs each)", file=sys.stderr)
            sweep_dir, how = run_study(None, args.runs, overrides), "default study, just run"
    points, collection = load_points(sweep_dir, given=bool(args.from_dir), metric=args.metric)
    try:
        check_measured(points, constraints)
    except ValueError as e:
        raise _as_flag(e) from None
    rec = analysis.recommend(points, constraints)
    source = {"sweep_dir": str(collection.sweep_dir), "how": how,
              "description": f"{collection.sweep_dir} ({how})"}
    document, text = recommendation_report(analysis, rec, source)
    emit(args.format, document, text)
    return 0 if rec.best else 1


def _gpu_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gpu", default=REFERENCE, metavar="TYPE",
                        help=f"GPU cost model: {', '.join(known_pricings())} (default: {REFERENCE})")


def _from_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--from", dest="from_dir", metavar="DIR", help=f"a cost-performance sweep directory {what}")


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "cost-performance", help="Analyze cost vs performance trade-offs",
        description="Fine-tune the cached base student with each configuration (LoRA ranks, full fine-tuning), "
                    "measure accuracy, training time and peak memory over seeds, price the measured hours on a "
                    "GPU cost model, and mark the Pareto frontier.",
        epilog=f"{options.OVERRIDES_EPILOG} {GPU_EPILOG}")
    _gpu_option(p)
    p.add_argument("--configs", default=DEFAULT_CONFIGS, metavar="PATH",
                   help="YAML list of {name, overrides} configurations (default: LoRA r=8, 16, 32, 64 and full "
                        "fine-tuning)")
    runs = bench_runs(BENCH)
    p.add_argument("--runs", type=options.positive_int, default=runs,
                   help=f"runs (seeds) per configuration (default: {runs})")
    p.add_argument("--objectives", type=options.comma_list, default=list(DEFAULT_OBJECTIVES),
                   help=f"Pareto objectives, two or more of {', '.join([*OBJECTIVES, METRIC])} ({METRIC}: the "
                        "deciding metric, in its direction; default: cost,metric)")
    options.add_metric_option(p)
    _from_option(p, "to price instead of running a new study")
    options.add_format_option(p)
    options.add_memory_option(p)
    options.add_resume_option(p)
    options.add_artifact_option(p)
    p.set_defaults(handler=_cost_performance)

    p = commands.add_parser(
        "recommend", help="Recommend configurations based on constraints",
        description="The measured configuration with the best validation value of the deciding metric (--metric) "
                    "that meets every constraint (ties: the cheaper), from --from DIR, else the latest "
                    "cost-performance sweep, else a default study run first.",
        epilog=GPU_EPILOG)
    p.add_argument("--max-cost", type=options.number, metavar="USD", help="maximum budget in USD")
    p.add_argument("--min-accuracy", type=options.number, metavar="VALUE", help="minimum accuracy (0.0-1.0)")
    p.add_argument("--max-time", type=options.number, metavar="HOURS", help="maximum training time in hours")
    p.add_argument("--max-memory", type=options.number, metavar="GB", help="maximum peak memory in GB")
    p.add_argument("--max-loss", type=options.number, metavar="VALUE",
                   help="maximum test loss (a language model's held-out cross-entropy, in nats)")
    p.add_argument("--max-perplexity", type=options.number, metavar="VALUE", help="maximum test perplexity")
    p.add_argument("--min-metric", type=options.number, metavar="VALUE",
                   help="minimum test value of the deciding metric (--metric)")
    p.add_argument("--max-metric", type=options.number, metavar="VALUE",
                   help="maximum test value of the deciding metric (--metric)")
    options.add_metric_option(p)
    _gpu_option(p)
    _from_option(p, "to read the measured configurations from")
    p.add_argument("--runs", type=options.positive_int, default=runs,
                   help=f"runs per configuration if the default study must be run first (default: {runs})")
    options.add_format_option(p)
    p.set_defaults(handler=_recommend)
