"""``entrenar-bench <COMMAND>``: each command registers its own sub-parser and handler."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Sequence

from entrenar_bench.cli import aggregate_cmd, cost, research, sweeps
from entrenar_bench.errors import NoResults, UsageError

COMMAND_MODULES = (sweeps, cost, aggregate_cmd, research)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad options in one line (no usage dump) and exits 2."""

    def error(self, message: str) -> None:
        raise UsageError(message)


DESCRIPTIONS = {
    "entrenar-bench": "Distillation benchmarking: sweeps, comparisons, ablations, costs, research artifacts.",
    "entrenar": "Research artifacts: init, preregister, bundle, verify.",
}


def build_parser(prog: str = "entrenar-bench", modules: Sequence = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog, description=DESCRIPTIONS.get(prog))
    commands = parser.add_subparsers(dest="command", metavar="<COMMAND>", parser_class=OneLineParser, required=True)
    for module in modules:
        module.register(commands)
    return parser


def split_passthrough(argv: list[str]) -> tuple[list[str], list[str]]:
    """Everything after a lone ``--`` is a Hydra override passed through unchanged."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def run_cli(argv: Sequence[str] | None, prog: str, modules: Sequence) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    own, passthrough = split_passthrough(argv)
    parser = build_parser(prog, modules)
    try:
        args = parser.parse_args(own)
        args.overrides = passthrough
        args.argv = argv
        return args.handler(args) or 0
    except (UsageError, NoResults) as e:
        sub = getattr(e, "command", None)
        print(f"{prog}{' ' + sub if sub else ''}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def exit_now(code: int) -> None:
    """Exit without the interpreter's final garbage collections: with torch, scipy and matplotlib
    loaded they take about a second and free nothing the process still needs."""
    gc.freeze()
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> None:
    exit_now(run_cli(argv, "entrenar-bench", COMMAND_MODULES))


def entrenar_main(argv: Sequence[str] | None = None) -> None:
    """``entrenar research ...``: the research commands alone."""
    exit_now(run_cli(argv, "entrenar", (research,)))


if __name__ == "__main__":
    main()
