"""``research init | preregister | check | bundle | verify`` (also ``entrenar research ...``)."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from entrenar_bench.errors import UsageError
from entrenar_bench.cli.options import add_format_option
from entrenar_bench.cli.output import emit
from entrenar_bench.research.artifact import SCHEMA, TYPES, load_artifact, save_artifact, utc_now
from entrenar_bench.research.claims import TESTS
from entrenar_bench.research.hypotheses import registered_claims
from entrenar_bench.research.environment import tool_version
from entrenar_bench.research.prereg import preregister, registrations

ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def git_author() -> list[str]:
    """``Name <email>`` from git config, or nothing when git or the setting is absent."""
    def get(key: str) -> str:
        try:
            done = subprocess.run(["git", "config", "--get", key], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip()
    name, email = get("user.name"), get("user.email")
    return [f"{name} <{email}>" if email else name] if name else []


def _init(args: argparse.Namespace) -> int:
    if not ID.fullmatch(args.id):
        raise UsageError(f"--id {args.id!r}: use letters, digits, '.', '_' and '-' (it names the bundle)")
    if not args.title.strip():
        raise UsageError("--title is empty")
    path = Path(args.output)
    if path.exists():
        raise UsageError(f"{path}: already exists (not overwritten)")
    artifact = {"schema": SCHEMA, "id": args.id, "title": args.title, "type": args.type, "created": utc_now(),
                "authors": args.author or git_author(), "tool": {"name": "entrenar-bench", "version": tool_version()},
}
    save_artifact(path, artifact)
    emit(args.format, {"artifact": str(path), **artifact}, f"created {path} ({args.type} {args.id!r})")
    return 0


def _preregister(args: argparse.Namespace) -> int:
    for option, text in (("--hypothesis", args.hypothesis), ("--methods", args.methods)):
        if not text.strip():
            raise UsageError(f"{option} is empty")
    plan = {"metric": args.metric, "test": args.test, "alpha": args.alpha, "runs": args.runs}
    record, amendment = preregister(Path(args.artifact), args.hypothesis, args.methods, args.reason,
                                    args.claim or [], plan)
    what = f"amendment {amendment}" if amendment else "preregistration"
    if amendment:
        print(f"{args.artifact}: already preregistered; recorded as {what} (the original is kept)", file=sys.stderr)
    emit(args.format, {"artifact": args.artifact, "amendment": amendment, **record},
         f"{args.artifact}: {what} recorded {record['timestamp']}\n"
         f"  hypothesis sha256 {record['hypothesis_sha256']}\n  config digest     {record['config_digest']}"
         + "".join(f"\n  claim {c['id']}: {c['text']} ({c['kind']})" for c in record.get("claims", [])))
    return 0


def _check(args: argparse.Namespace) -> int:
    path = Path(args.artifact)
    artifact = load_artifact(path)
    if not registered_claims(registrations(artifact)):
        raise UsageError(f"{path}: no registered claims to check (preregister with --claim)")
    from entrenar_bench.research import bundle as bundling, check as checking  # pandas, scipy: only to check

    sweeps = [(str(folder), folder, links) for folder, links in bundling.linked_sweeps(path, artifact)]
    report = checking.evaluate(artifact, sweeps, args.metric, args.test)
    emit(args.format, {"artifact": str(path), **report}, checking.summary(report))
    return 0


def _bundle(args: argparse.Namespace) -> int:
    from entrenar_bench.research import bundle as bundling  # pandas, scipy: only to bundle

    target, document = bundling.bundle(Path(args.artifact), Path(args.output) if args.output else None,
                                       args.zip, args.checkpoints)
    emit(args.format, {"bundle": str(target), **document}, bundling.summary(target, document))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from entrenar_bench.research import verify as verifying  # pandas, scipy: only to verify

    report = verifying.verify(Path(args.bundle), Path(args.extract) if args.extract else None)
    emit(args.format, report, verifying.summary(report))
    if not report["ok"]:
        names = [*report["changed"], *report["missing"], *report["added"]]
        what = [f"{len(names)} files changed, missing or added: {', '.join(names)}"] if names else []
        print(f"research verify: {args.bundle}: VERIFICATION FAILED: {'; '.join(what + report['problems'])}",
              file=sys.stderr)
        return 1
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("research", help="Research artifacts: init, preregister, check, bundle, verify",
                                description="Pre-register a study, link its sweeps, bundle and verify the results.")
    sub = group.add_subparsers(dest="research_command", metavar="<RESEARCH COMMAND>", required=True,
                               parser_class=type(group))

    p = sub.add_parser("init", help="Create artifact.yaml (never overwrites)")
    p.add_argument("--id", required=True, help="artifact id (letters, digits, . _ -); names the bundle")
    p.add_argument("--title", required=True, help="title of the study")
    p.add_argument("--type", required=True, choices=TYPES, help=f"artifact type: {', '.join(TYPES)}")
    p.add_argument("--author", action="append", metavar="'NAME <EMAIL>'",
                   help="author (repeatable; default: git config user.name and user.email)")
    p.add_argument("--output", "-o", default="artifact.yaml", metavar="FILE", help="default: artifact.yaml")
    add_format_option(p)
    p.set_defaults(handler=_init)

    p = sub.add_parser("preregister", help="Record hypothesis, methods and config digest (again: an amendment)")
    p.add_argument("artifact", metavar="ARTIFACT")
    p.add_argument("--hypothesis", required=True)
    p.add_argument("--methods", required=True)
    p.add_argument("--reason", help="why an amendment is made (recorded with it)")
    p.add_argument("--claim", action="append", metavar="CLAIM",
                   help="a claim to test (repeatable): 'kd > none on loss', 'A >= B within 0.01', 'A ~ B within 0.01', "
                        "'best temperature is 4' (grammar: docs/research.md)")
    p.add_argument("--metric", help="analysis plan: the metric of claims that name none (default: the task's "
                                    "primary metric, else accuracy)")
    p.add_argument("--test", choices=TESTS, help="analysis plan: Welch's or the paired t-test (default welch)")
    p.add_argument("--alpha", type=float, help="analysis plan: significance level after Holm's correction (0.05)")
    p.add_argument("--runs", type=int, help="analysis plan: runs planned per group (fewer are flagged)")
    add_format_option(p)
    p.set_defaults(handler=_preregister)

    p = sub.add_parser("check", help="The verdict of each registered claim on the linked sweeps")
    p.add_argument("artifact", metavar="ARTIFACT")
    p.add_argument("--metric", help="check on this metric instead of the registered one (flagged: exploratory)")
    p.add_argument("--test", choices=TESTS, help="check with this test instead of the registered one (exploratory)")
    add_format_option(p)
    p.set_defaults(handler=_check)

    p = sub.add_parser("bundle", help="Bundle artifact, linked runs, environment and SHA-256 manifest")
    p.add_argument("artifact", metavar="ARTIFACT")
    p.add_argument("--zip", action="store_true", help="write one archive, <id>.zip")
    p.add_argument("--output", "-o", metavar="PATH", help="default: <id> (or <id>.zip) beside the artifact")
    p.add_argument("--checkpoints", action="store_true", help="include model checkpoints (left out by default)")
    add_format_option(p)
    p.set_defaults(handler=_bundle)

    p = sub.add_parser("verify", help="Recompute a bundle's digests; exit 1 naming changed or missing files")
    p.add_argument("bundle", metavar="BUNDLE", help="bundle folder or .zip")
    p.add_argument("--extract", metavar="DIR", help="keep the verified zip's contents in DIR (nothing overwritten)")
    add_format_option(p)
    p.set_defaults(handler=_verify)
