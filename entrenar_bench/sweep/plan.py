"""Sweep plans as Hydra overrides: ranges in exact decimals, seeds, strategies, ablation variants (the
pieces the registered sweep commands, ``sweep/commands.py``, plan with)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from itertools import combinations
from typing import Any

from entrenar_bench.distill.settings import STRATEGY_ORDER
from entrenar_bench.run.ablation import COMPONENTS, FULL, ablate_value
from entrenar_bench.rules import check_value, words
from entrenar_bench.run.schema import rule_for
from entrenar_bench.errors import ConfigError, UsageError

STRATEGIES = STRATEGY_ORDER[:-1]
BASELINE = STRATEGY_ORDER[-1]
MAX_POINTS = 1000


def quote_value(value: str) -> str:
    """Quote an override value for Hydra's grammar when it holds anything but plain path characters."""
    if re.fullmatch(r"[\w./\-:+@]*", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def decimal_range(name: str, key: str, start: float, end: float, step: float) -> list[str]:
    """``start, start+step, ..., end`` inclusive, in exact decimal steps (0.1 steps give 0.3, never
    0.30000000000000004); values as Hydra override text, each checked by the rule of ``key`` (every job's)."""
    try:
        lo, hi, by = (Decimal(str(v)) for v in (start, end, step))
    except InvalidOperation:
        raise UsageError("--start, --end and --step must be numbers") from None
    if not by.is_finite() or by <= 0:
        raise UsageError(f"--step must be > 0, got {step}")
    if hi < lo:
        raise UsageError(f"--end ({end}) must not be below --start ({start})")
    rule = rule_for(key)
    try:
        for value in (lo, hi):
            if rule is not None:
                check_value(float(value), key, rule)
    except ConfigError:
        raise UsageError(f"{name} values must be {words(rule)}; got --start {start} --end {end}") from None
    count = int((hi - lo) / by) + 1
    if count > MAX_POINTS:
        shown = f"{count:,}" if count < 10**9 else f"{Decimal(count):.1E}"
        raise UsageError(f"{shown} {name} points is too many (at most {MAX_POINTS}); use a larger --step")
    values = [lo + i * by for i in range(count)]
    return [format(v, "f") if "." in format(v, "f") else f"{v}.0" for v in values]


def seed_overrides(runs: int) -> list[str]:
    """The seeds of each point. Planned first, so they vary slowest (Hydra's sweep order is the product
    of the overrides, the last varying fastest): every point gets its first seed before any its second,
    so a sweep stopped early covers every point, and parallel workers end on a mix of points rather
    than on the seeds of the slowest strategy."""
    if not isinstance(runs, int) or runs < 1:
        raise UsageError(f"--runs must be a positive integer, got {runs}")
    return [f"seed={','.join(str(s) for s in range(runs))}"]


def teacher_overrides(teachers: int) -> list[str]:
    """``--teachers K``: K teachers (``teacher.seed`` 0..K-1, each trained once and cached) crossed with the
    student seeds, planned after them (every seed meets every teacher before the next seed); nothing for
    one teacher, the configured one. Aggregation then treats the teacher as a random factor."""
    if not isinstance(teachers, int) or teachers < 1:
        raise UsageError(f"--teachers must be a positive integer, got {teachers}")
    return [] if teachers == 1 else [f"teacher.seed={','.join(str(t) for t in range(teachers))}"]


def compare_overrides(strategies: Iterable[str], runs: int, teachers: int = 1) -> list[str]:
    chosen = list(dict.fromkeys(s.strip() for s in strategies if s.strip()))
    known = (*STRATEGIES, BASELINE)
    unknown = [s for s in chosen if s not in known]
    if unknown or not chosen:
        raise UsageError(f"unknown strategy {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"known: {', '.join(known)}")
    return [*seed_overrides(runs), *teacher_overrides(teachers), f"distill={','.join(chosen)}"]


def ablation_variants(components: Iterable[str]) -> list[str]:
    """full, each component removed, each pair removed — as ``ablate`` values."""
    chosen = list(dict.fromkeys(c.strip() for c in components if c.strip()))
    unknown = [c for c in chosen if c not in COMPONENTS]
    if unknown or not chosen:
        raise UsageError(f"unknown component {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"known: {', '.join(COMPONENTS)}")
    removed = [[c] for c in chosen] + [list(p) for p in combinations(chosen, 2)]
    return [FULL, *(ablate_value(r) for r in removed)]


def _override_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(_override_value(v) for v in value) + "]"
    return quote_value(str(value))


def mapping_to_overrides(mapping: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``{"distill": "combined", "train": {"epochs": 50}}`` -> ``["distill=combined", "train.epochs=50"]``."""
    out = []
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            out += mapping_to_overrides(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={_override_value(value)}")
    return out


def ablation_overrides(components: Iterable[str], runs: int, base: Sequence[str] = (), teachers: int = 1) -> list[str]:
    return [*base, *seed_overrides(runs), *teacher_overrides(teachers),
            f"ablate={','.join(ablation_variants(components))}"]
