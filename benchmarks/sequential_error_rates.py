"""Error rates of ``--runs auto``, measured by replaying run results through the procedure many times.

Each replication draws ``--max-runs`` values a group, feeds them to the sequential procedure
(aggregate/sequential.py, exactly as a sweep's rounds would: a group stops getting values when it stops) and,
beside it, to the fixed design (every group ``--max-runs`` runs, one Welch t-test a comparison, Holm: the same
procedure with a single look).

Sources of the values:
  --from DIR     a recorded sweep (any ``compare`` sweep of two or more groups): each draw resamples, with
                 replacement, the real runs' metric values of a group (the default when DIR is given);
  (default)      normal draws with the means and standard deviations given by --mean/--sd (the defaults are
                 the embedded LM task's held-out loss, none and kd, measured in BENCHMARKS.md).

Scenarios (each ``--reps`` replications):
  A/A            both arms drawn from the baseline group: any rejection is a false positive (also with three
                 groups against the baseline: the family-wise rate under Holm);
  shift          the second arm shifted by --shift standard deviations (a known effect): the power;
  real           the baseline against the recorded (or given) second group: the power against the real effect;
  racing A/A     ``--points`` parameter points all drawn from the baseline: a point dropped is a false drop;
  racing         ``--points`` points, point i better by i · ``--spacing`` baseline SDs: any point dropped
                 (the power), and the runs used.

Prints a Markdown table (rates with their Monte-Carlo standard error, mean runs used) for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from entrenar_bench.aggregate.sequential import EFFICACY, run_procedure
from entrenar_bench.aggregate.sequential_design import Design


def recorded(sweep_dir: str, metric: str | None) -> tuple[dict[str, np.ndarray], bool, str]:
    """Each group's completed metric values in a recorded sweep, its direction and the metric's name."""
    from entrenar_bench.aggregate.collect import collect

    collection = collect(sweep_dir, metric)
    column = collection.metric.column
    values = {str(g): rows[column].dropna().to_numpy(float) for g, rows in collection.completed.groupby("group")}
    return values, bool(collection.metric.lower_is_better), collection.metric.name


def rejects(design: Design, samples, baseline: str | None, lower: bool) -> tuple[bool, float]:
    """Whether any comparison was rejected, and the mean runs a group used."""
    outcome = run_procedure(design, samples, baseline, lower)
    return (any(c.status == EFFICACY for c in outcome.comparisons.values()),
            sum(outcome.runs.values()) / len(samples))


def simulate(draw, design: Design, baseline: str | None, lower: bool, reps: int, rng) -> dict[str, float]:
    """Rejection rate of any comparison, sequential and fixed, and the sequential design's mean runs a group. The
    fixed design is the same procedure with one look at --max-runs: Welch's test at α, Holm across comparisons."""
    fixed_design = Design(design.max_runs, design.max_runs, alpha=design.alpha)  # no futility: the plain test
    seq = fixed = runs = 0
    for _ in range(reps):
        samples = draw(rng)
        rejected, used = rejects(design, samples, baseline, lower)
        seq, runs, fixed = seq + rejected, runs + used, fixed + rejects(fixed_design, samples, baseline, lower)[0]
    return {"sequential": seq / reps, "fixed": fixed / reps, "runs": runs / reps}


def se(p: float, reps: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / reps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="source", help="a recorded compare sweep to resample")
    parser.add_argument("--metric", help="the metric to read from --from (default: the runs' primary metric)")
    parser.add_argument("--baseline", default="none", help="the baseline group (default: none)")
    parser.add_argument("--other", default="kd", help="the group of the real effect (default: kd)")
    parser.add_argument("--mean", type=float, nargs=2, default=(2.245, 1.825), metavar=("BASE", "OTHER"),
                        help="normal draws: the two groups' means (default: the LM task's none, kd loss)")
    parser.add_argument("--sd", type=float, nargs=2, default=(0.06, 0.06), metavar=("BASE", "OTHER"))
    parser.add_argument("--shift", type=float, default=1.5, help="the known effect, in baseline SDs (default 1.5)")
    parser.add_argument("--max-runs", type=int, default=8)
    parser.add_argument("--min-runs", type=int, default=3)
    parser.add_argument("--look-every", type=int, default=1)
    parser.add_argument("--spending", default="obf")
    parser.add_argument("--mde", type=float, help="futility margin in the metric's units (default: none)")
    parser.add_argument("--points", type=int, default=8, help="racing: points of the parameter sweep")
    parser.add_argument("--spacing", type=float, default=0.5, help="racing: SDs between neighbouring points")
    parser.add_argument("--only", help="run only the scenarios whose name contains this text (e.g. racing)")
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    design = Design(args.max_runs, args.min_runs, args.look_every, args.mde, spending=args.spending).check()
    n = design.max_runs
    if args.source:
        values, lower, name = recorded(args.source, args.metric)
        base, other = values[args.baseline], values[args.other]
        source = (f"resampled (with replacement) from {args.source}: {args.baseline} n={len(base)} "
                  f"({base.mean():.4g} ± {base.std(ddof=1):.3g}), {args.other} n={len(other)} "
                  f"({other.mean():.4g} ± {other.std(ddof=1):.3g}), {name}")
        pick = lambda rng, x: rng.choice(x, n)  # noqa: E731
        sd = float(base.std(ddof=1))
    else:
        lower, (m0, m1), (s0, s1) = True, args.mean, args.sd
        base, other = (m0, s0), (m1, s1)
        source = f"normal draws: baseline {m0:g} ± {s0:g}, other {m1:g} ± {s1:g}"
        pick = lambda rng, x: rng.normal(x[0], x[1], n)  # noqa: E731
        sd = s0
    unit = -sd if lower else sd  # one baseline SD, towards better
    shift = args.shift * unit
    scenarios = {
        "A/A (no effect)": (lambda rng: {"a": pick(rng, base), "b": pick(rng, base)}, "a"),
        f"shift of {args.shift:g} SD": (lambda rng: {"a": pick(rng, base), "b": pick(rng, base) + shift}, "a"),
        f"real effect ({args.other} vs {args.baseline})": (
            lambda rng: {"a": pick(rng, base), "b": pick(rng, other)}, "a"),
        "A/A, 3 groups against the baseline": (
            lambda rng: {g: pick(rng, base) for g in ("a", "b", "c", "d")}, "a"),
        f"racing A/A ({args.points} equal points)": (
            lambda rng: {str(i): pick(rng, base) for i in range(args.points)}, None),
        f"racing ({args.points} points {args.spacing:g} SD apart)": (
            lambda rng: {str(i): pick(rng, base) + i * args.spacing * unit
                         for i in range(args.points)}, None),
    }
    scenarios = {k: v for k, v in scenarios.items() if args.only is None or args.only in k}
    print(f"source: {source}")
    futility = f", futility ±{args.mde:g}" if args.mde else ""
    print(f"design: looks at {design.looks} runs a group, {args.spending} spending, α 0.05 two-sided{futility}; "
          f"fixed design: {n} runs a group; {args.reps} replications each, seed {args.seed}")
    print("\n| scenario | rejects (sequential) | rejects (fixed n) | mean runs a group, sequential (fixed) |")
    print("|---|---|---|---|")
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    for label, (draw, baseline) in scenarios.items():
        r = simulate(draw, design, baseline, lower, args.reps, rng)
        fixed = f"{r['fixed']:.3f} ± {se(r['fixed'], args.reps):.3f}"
        print(f"| {label} | {r['sequential']:.3f} ± {se(r['sequential'], args.reps):.3f} | {fixed} | "
              f"{r['runs']:.2f} ({n}) |", flush=True)
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
