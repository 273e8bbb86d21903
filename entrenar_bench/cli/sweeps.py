"""The registered sweep commands (``temperature``, ``alpha``, ``compare``, ``ablation`` and any other
``sweep/commands.py`` holds): options -> the command's plan -> multirun -> report."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from entrenar_bench import api
from entrenar_bench.cli.auto import add_auto_options, auto_design, resuming_auto, runs_value
from entrenar_bench.cli.options import (
    OVERRIDES_EPILOG,
    add_artifact_option,
    add_format_option,
    add_memory_option,
    add_metric_option,
    add_resume_option,
    check_runs,
    comma_list,
    memory_overrides,
    number,
    positive_int,
    run_or_resume,
)
from entrenar_bench.cli.output import emit, fail_if_unwritten
from entrenar_bench.errors import UsageError
from entrenar_bench.files import read_yaml_option
from entrenar_bench.research.link import check_artifact, link_sweep
from entrenar_bench.sweep import plan
from entrenar_bench.sweep.commands import SweepCommand, sweep_commands


def execute(args: argparse.Namespace, sweep_type: str, planned: Callable[[], list[str]],
            range_info: dict | None = None) -> int:
    """Check inputs, run (or resume) the sweep, link it to an artifact, print the report."""
    if args.artifact:
        check_artifact(Path(args.artifact))
    auto_resume = resuming_auto(args)
    design = None if auto_resume else auto_design(args)
    if not args.resume:
        check_runs(design.max_runs if design else args.runs, args.overrides)
    started = datetime.now(timezone.utc)
    if design or auto_resume:  # --runs auto: rounds of seeds (planned with one) until the comparisons are settled
        result = api.auto_sweep(sweep_type, [*planned(), *args.overrides, *memory_overrides(args)] if design else [],
                                design,
                                range_info if design else None, args.metric, args.resume)
        sweep_dir = result.sweep_dir
    else:
        overrides = args.overrides if args.resume else [*planned(), *args.overrides]
        sweep_dir = run_or_resume(args, sweep_type, overrides, preload=api.REPORT_MODULES)
    if args.artifact:
        link_sweep(Path(args.artifact), sweep_dir, started, ["entrenar-bench", *args.argv])
    if not (design or auto_resume):
        result = api.report(sweep_type, sweep_dir, None if args.resume else range_info, args.metric)
    emit(args.format, result.document, result.text)
    fail_if_unwritten(result.unwritten)
    return 0


def _runs(args: argparse.Namespace) -> int:
    """Seeds to plan: ``--runs N``; one for ``--runs auto`` (its rounds set the seeds)."""
    return 1 if args.runs == "auto" else args.runs


def read_base(path: str | None) -> list[str]:
    """``--base`` YAML: a mapping of config values (nested or dotted keys) or a list of overrides."""
    if path is None:
        return []
    content = read_yaml_option(path, f"--base {path}")
    if content is None:
        return []
    if isinstance(content, dict):
        return plan.mapping_to_overrides(content)
    if isinstance(content, list) and all(isinstance(o, str) for o in content):
        return content
    raise UsageError(f"--base {path}: expected a mapping of config values or a list of overrides")


def _common(parser: argparse.ArgumentParser, runs: int) -> None:
    parser.add_argument("--runs", type=runs_value, default=runs,
                        help=f"runs (seeds) per point, or auto: added in rounds (see --max-runs) (default: {runs})")
    parser.add_argument("--teachers", type=positive_int, default=1, metavar="K",
                        help="teachers (teacher.seed 0..K-1, each trained once and cached) crossed with the runs; "
                             "with K >= 2 the tests treat the teacher as a random factor (default: 1, the "
                             "configured teacher)")
    add_metric_option(parser)
    add_memory_option(parser)
    add_format_option(parser)
    add_resume_option(parser)
    add_artifact_option(parser)
    add_auto_options(parser)


OPTION_TYPES = {"number": number, "list": comma_list, "overrides_file": read_base}


def _handler(command: SweepCommand) -> Callable[[argparse.Namespace], int]:
    """Plan with the library's command (``sweep/commands.py``) from the parsed options, run, report."""
    def handler(args: argparse.Namespace) -> int:
        values = {option.name: getattr(args, option.name) for option in command.options()}
        return execute(args, command.name, lambda: command.plan(values, _runs(args), args.teachers),
                       command.range_info(values))
    return handler


def register(commands: argparse._SubParsersAction) -> None:
    """A sub-parser for every registered sweep command, its options and their defaults from the command."""
    for command in sweep_commands():
        defaults = command.defaults()
        p = commands.add_parser(command.name, help=command.help, description=command.description,
                                epilog=OVERRIDES_EPILOG)
        for option in command.options():
            default = defaults.get(option.name)
            shown = f" (default: {','.join(default) if isinstance(default, list) else default})" if default else ""
            p.add_argument(f"--{option.name}", type=OPTION_TYPES[option.kind], default=default, metavar=option.metavar,
                           help=f"{option.help}{shown}")
        _common(p, defaults["runs"])
        p.set_defaults(handler=_handler(command))
