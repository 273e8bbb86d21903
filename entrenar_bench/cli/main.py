"""``entrenar-bench <COMMAND>``: each command registers its own sub-parser and handler."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence

from entrenar_bench.cli import aggregate_cmd, cost, export_cmd, research, sweeps
from entrenar_bench.errors import EntrenarError, UsageError

COMMAND_MODULES = (sweeps, cost, aggregate_cmd, export_cmd, research)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad options in one line (no usage dump) and exits 2."""

    def error(self, message: str) -> None:
        raise UsageError(message)


DESCRIPTIONS = {
    "entrenar-bench": "Distillation benchmarking: sweeps, comparisons, ablations, costs, exports, research artifacts.",
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


def given_options(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The options the user typed (abbreviated or ``--x=v`` too), not the defaults argparse filled in:
    ``argv`` parsed again with every option's default suppressed."""
    saved: dict[int, tuple[argparse.Action, object]] = {}

    def suppress(p: argparse.ArgumentParser) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    suppress(sub)
            elif action.option_strings and id(action) not in saved:
                saved[id(action)] = (action, action.default)
                action.default = argparse.SUPPRESS

    suppress(parser)
    try:
        return set(vars(parser.parse_args(argv)))
    finally:
        for action, default in saved.values():
            action.default = default


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def run_cli(argv: Sequence[str] | None, prog: str, modules: Sequence) -> int:
    """Run one command; every error is one line on stderr and an exit code: 2 bad input (or an output that
    cannot be written), 1 no run completed or verification failed, 128 + N stopped by signal N."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    own, passthrough = split_passthrough(argv)
    parser = build_parser(prog, modules)
    try:
        args = parser.parse_args(own)
        args.overrides = passthrough
        args.argv = argv
        args.given = given_options(parser, own)
        return args.handler(args) or 0
    except EntrenarError as e:
        sub = getattr(e, "command", None)
        print(f"{prog}{' ' + sub if sub else ''}: error: {one_line(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a file or folder the command could not read or write: named, one line
        where = f"{e.filename}: " if e.filename else ""
        print(f"{prog}: error: {where}{one_line(e.strerror or e)}", file=sys.stderr)
        return UsageError.exit_code
    except Exception as e:  # a bug: still one line (ENTRENAR_BENCH_DEBUG=1 shows the traceback)
        if os.environ.get("ENTRENAR_BENCH_DEBUG"):
            raise
        print(f"{prog}: internal error: {type(e).__name__}: {one_line(e)[:300]} "
              "(ENTRENAR_BENCH_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


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
