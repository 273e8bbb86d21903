"""``entrenar-bench export SWEEP_DIR [--group NAME] --to DIR``: the best student, ready for ``from_pretrained``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from entrenar_bench.cli.options import add_metric_option


def _export(args: argparse.Namespace) -> int:
    from entrenar_bench.aggregate.export import export  # pandas, scipy: only for this command

    command = shlex.join(["entrenar-bench", *args.argv])
    done = export(Path(args.sweep_dir), Path(args.to), args.group, args.metric, command, args.paired)
    print(f"exported group {done.group} (run {done.job}, seed {done.seed}) to {done.target}", file=sys.stderr)
    print(done.target)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "export", help="Export the best student of a sweep (save_pretrained, tokenizer, model card)",
        description="Write the student of the selected group's best run (or of --group NAME) to DIR: the model "
                    "as its run saved it (Hugging Face save_pretrained, LoRA merged, with its tokenizer; other "
                    "models as a safetensors state dict and config) and a model card README.md with the teacher, "
                    "data, distillation settings, seeds, the metric with its 95% CI, its test against the runner-up "
                    "(the aggregate report's, Holm-adjusted over its pairs), and the commands that reproduce it.")
    p.add_argument("sweep_dir", metavar="SWEEP_DIR", help="a sweep directory (any sweep command's, or a multirun)")
    p.add_argument("--group", metavar="NAME", help="the group to export (default: the one the report selects)")
    p.add_argument("--to", required=True, metavar="DIR", help="a new or empty directory to write")
    p.add_argument("--paired", action="store_true",
                   help="the card's test: paired t-tests on shared seeds (as aggregate --paired; default Welch)")
    add_metric_option(p)
    p.set_defaults(handler=_export)
