"""An auto sweep read back: each group's metric by seed, the decision after a round, and how the sweep stopped.

A run's group is the value of the swept override it ran with (``distill=kd``, ``distill.temperature=2.0``), read
from its recorded overrides; its value is the deciding metric's test value (the value the reports test).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from entrenar_bench.aggregate.boundaries import boundaries, nominal_level
from entrenar_bench.aggregate.collect import Collection, collect
from entrenar_bench.aggregate.sequential import (EFFICACY, FUTILITY, MAX_RUNS, RACING, Outcome, adjusted_p_values,
                                                 run_procedure)
from entrenar_bench.aggregate.sequential_design import Design
from entrenar_bench.sweep.commands import ParameterSweep, sweep_command

SPENDING_NAMES = {"obf": "Lan–DeMets O'Brien–Fleming-type", "pocock": "Lan–DeMets Pocock-type"}


def swept_value(overrides: Any, key: str) -> str | None:
    """The value of ``key`` in a run's recorded overrides (one string, space-separated)."""
    if not isinstance(overrides, str):
        return None
    return next((o.split("=", 1)[1] for o in overrides.split() if o.lstrip("+").startswith(f"{key}=")), None)


def same_value(text: str | None) -> str | None:
    """A swept value as Hydra records it for a job: the planned ``0.50`` runs as ``0.5``, so numbers are compared
    as numbers, anything else as text."""
    try:
        return repr(float(text))
    except (TypeError, ValueError):
        return text


def samples(collection: Collection, key: str, values: Sequence[str], below: int | None = None
            ) -> dict[str, list[float]]:
    """value -> the metric of seeds 0, 1, … (NaN where a run failed), only seeds below ``below`` if given."""
    by_seed: dict[str, dict[int, float]] = {v: {} for v in values}
    planned = {same_value(v): v for v in values}
    column = collection.metric.column
    for _, row in collection.completed.iterrows():
        value, seed = planned.get(same_value(swept_value(row["overrides"], key))), row["seed"]
        metric = row.get(column)
        if value in by_seed and isinstance(seed, (int, float)) and seed == seed and (below is None or seed < below) \
                and metric is not None and math.isfinite(metric):
            by_seed[value][int(seed)] = float(metric)
    length = max((max(s, default=-1) for s in by_seed.values()), default=-1) + 1
    return {v: [by_seed[v].get(s, math.nan) for s in range(length)] for v in values}


def races(sweep_type: str) -> bool:
    """Whether the sweep's points race against its current best (a parameter sweep) rather than a reference."""
    return isinstance(sweep_command(sweep_type), ParameterSweep)


def baseline_of(sweep_type: str, values: Sequence[str]) -> str | None:
    """The reference of a comparison sweep: ``none`` if compared, else the first group (ablation: the full
    objective); None for a parameter sweep, which races against its current best."""
    if races(sweep_type):
        return None
    return "none" if "none" in values else values[0]


def outcome(sweep_dir: Path, design: Design, key: str, values: Sequence[str], baseline: str | None,
            metric: str | None = None, looks: int | None = None) -> tuple[Outcome, Collection]:
    """The procedure replayed on the sweep's runs up to look ``looks`` (default: every look the runs reach)."""
    collection = collect(sweep_dir, metric)
    below = design.looks[looks - 1] if looks else None
    found = samples(collection, key, values, below)
    lower = bool(collection.metric.lower_is_better)
    return run_procedure(design, found, baseline, lower, looks), collection


def decider(design: Design, key: str, values: Sequence[str], baseline: str | None, metric: str | None
            ) -> Callable[[Path, int], list[str]]:
    """What sweep/sequential.py asks after round k: the groups that get the next round."""
    def decide(sweep_dir: Path, k: int) -> list[str]:
        return outcome(sweep_dir, design, key, values, baseline, metric, looks=k)[0].active
    return decide


def _verdict(c: dict[str, Any], reference: str | None, racing: bool, lower_is_better: bool) -> str:
    against = f"the best ({c['against']})" if racing else reference
    if c["status"] == EFFICACY:
        b = c["boundary"]
        better = (c["mean_diff"] < 0) == lower_is_better
        how = f"{'better' if better and not racing else 'worse'} than {against}"
        return (f"{'dropped' if racing else 'stopped'} at look {c['look']} ({c['runs']} runs): {how}; efficacy "
                f"boundary crossed at look {b['look']} (p {b['observed_p']:.2g} ≤ {b['p']:.2g}, "
                f"|z| {b['observed_z']:.2f} ≥ {b['z']:.2f})")
    if c["status"] == FUTILITY:
        return (f"stopped at look {c['look']} ({c['runs']} runs): futility, the difference is within ±{c['mde']:g} of "
                f"{against} (interval {c['interval'][0]:+.3g} to {c['interval'][1]:+.3g})")
    if c["status"] == MAX_RUNS:
        return f"max runs reached, undecided ({c['runs']} runs)"
    return f"the best: kept to the end ({c['runs']} runs)" if c["status"] == "best" else \
        f"still running ({c['runs']} runs so far)"


def _boundary(hit: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The efficacy boundary a comparison crossed: its look, z and nominal p, the Holm level, and the test's own."""
    if hit is None:
        return None
    return {"look": hit["look"], "z": hit["boundary_z"], "p": hit["boundary_p"], "level": hit["level"],
            "observed_z": hit["z"], "observed_p": hit["p_value"]}


def section(result: Outcome, sweep_type: str, lower_is_better: bool) -> dict[str, Any]:
    """The ``sequential`` JSON object of the report (``lower_is_better``: the metric's); its text: section_lines.
    A comparison's ``p_adjusted`` is the one of the look it stopped at (the last look done while it runs)."""
    design, racing = result.design, result.reference is not None and races(sweep_type)
    adjusted = {k: adjusted_p_values(result, k) for k in range(1, result.looks_done + 1)}
    comparisons = []
    for group, c in result.comparisons.items():
        last = c.tests[-1] if c.tests else {}
        status = "best" if racing and group == result.reference else c.status
        at = adjusted.get(c.stopped_at or result.looks_done, {})
        entry = {"group": group, "against": last.get("against", result.reference), "status": status,
                 "look": c.stopped_at, "runs": result.runs[group], "p_value": last.get("p_value"),
                 "p_adjusted": None if status == "best" else at.get(group), "mean_diff": last.get("mean_diff"),
                 "interval": last.get("tost_ci"), "mde": design.mde,
                 "boundary": _boundary(c.crossing)}
        entry["verdict"] = _verdict(entry, result.reference, racing, lower_is_better)
        comparisons.append(entry)
    used, fixed = sum(result.runs.values()), design.max_runs * len(result.runs)
    stopped = "max runs reached" if any(c.status == MAX_RUNS for c in result.comparisons.values()) else \
        "every comparison stopped" if not result.active else "not finished (resume it)"
    document = {"design": {**design.as_dict(), "fractions": design.fractions,
                           "boundaries_z": list(boundaries(design.fractions, design.alpha, design.spending))},
                "mode": RACING if racing else f"each against {result.reference}",
                "holm": {"hypotheses": result.family, "share": result.share},
                "reference": result.reference, "looks_done": result.looks_done, "stopped": stopped,
                "runs": result.runs, "runs_used": used, "runs_fixed_design": fixed, "runs_saved": fixed - used,
                "saved_fraction": (fixed - used) / fixed if fixed else None, "comparisons": comparisons}
    if racing:
        document["dropped"] = [{k: c[k] for k in ("group", "look", "runs", "against", "p_adjusted")}
                               for c in comparisons if c["status"] == EFFICACY]
    return document


def write_plot(collection: Collection, document: dict[str, Any], key: str, values: Sequence[str]) -> None:
    """``sequential.png`` beside the runs (its path under ``plot``); a write that fails is noted, not raised."""
    from entrenar_bench.aggregate.sequential_plot import sequential_plot

    try:
        document["plot"] = str(sequential_plot(collection.sweep_dir / "sequential.png",
                                               samples(collection, key, values), document, collection.metric))
    except OSError as e:
        collection.unwritten.append(str(e))


def sequential_section(sweep_dir: Path, sweep_type: str, design: Design, key: str, values: Sequence[str],
                       metric: str | None = None) -> tuple[dict[str, Any], list[str], list[str]]:
    """The finished sweep's ``sequential`` section: its JSON object (with ``plot``), its text, plots not written."""
    result, collection = outcome(sweep_dir, design, key, values, baseline_of(sweep_type, values), metric)
    document = section(result, sweep_type, bool(collection.metric.lower_is_better))
    write_plot(collection, document, key, values)
    return document, section_lines(document), list(collection.unwritten)


def recorded_section(sweep_dir: Path, metric: str | None = None
                     ) -> tuple[dict[str, Any], list[str], list[str]] | None:
    """:func:`sequential_section` of an auto sweep as its plan records it (``aggregate DIR``); None for any
    other sweep."""
    from entrenar_bench.sweep.rounds import is_sequential
    from entrenar_bench.sweep.sequential import read_round_plan

    if not is_sequential(sweep_dir):
        return None
    plan = read_round_plan(sweep_dir)
    design = Design.from_dict(plan.design)
    return sequential_section(sweep_dir, plan.task_name, design, plan.key, plan.values, metric)


def _holm_words(doc: Mapping[str, Any]) -> str:
    if doc["mode"] != RACING:
        return "Holm across the comparisons"
    g = doc["holm"]["hypotheses"]
    return (f"Holm across the {g} points, each tested one-sided against the best at its Holm level / {g - 1} (the "
            "best is chosen from the data)")


def section_lines(doc: Mapping[str, Any]) -> list[str]:
    """The text of a ``sequential`` section."""
    d = doc["design"]
    futility = f"; futility: the (1 − 2α) interval within ±{d['mde']:g}" if d["mde"] else ""
    lines = ["", f"Sequential (--runs auto): {SPENDING_NAMES[d['spending']]} spending, α {d['alpha']:g} two-sided, "
                 f"{_holm_words(doc)}; looks at {', '.join(map(str, d['looks']))} runs a group "
                 f"(nominal p at each: {', '.join(f'{nominal_level(c):.2g}' for c in d['boundaries_z'])}){futility}",
             f"  {doc['mode']}; stopped: {doc['stopped']} after look {doc['looks_done']}"]
    for c in doc["comparisons"]:
        p_adj = "" if c["p_adjusted"] is None else f"; adjusted p {c['p_adjusted']:.3g}"
        lines.append(f"  {c['group']}: {c['verdict']}{p_adj}")
    if doc["mode"] == RACING:
        dropped = ", ".join(f"{c['group']} at look {c['look']} ({c['runs']} runs, adjusted p {c['p_adjusted']:.2g})"
                            for c in doc["dropped"])
        lines.append(f"  dropped: {dropped or 'none (no point was significantly worse than the best at any look)'}")
    lines.append(f"  runs: {doc['runs_used']} of the fixed design's {doc['runs_fixed_design']} "
                 f"({d['max_runs']} a group): {doc['runs_saved']} saved ({doc['saved_fraction']:.0%})")
    return lines + ([f"  plot: {doc['plot']}"] if doc.get("plot") else [])
