"""Claims and the analysis plan a pre-registration commits to, and the grammar claims are written in.

Grammar (one claim per ``--claim``, or per item of ``claims:`` in artifact.yaml)::

    claim  := [ID ":"] body [" on " METRIC] [" by " δ | " within " δ]   (the clauses in either order)
    body   := GROUP ">" GROUP          superiority: A beats B (``by δ``: by more than δ)
            | GROUP ">=" GROUP         non-inferiority: A is not worse than B by δ or more (``within δ``)
            | GROUP "~" GROUP          equivalence: A and B differ by less than δ (``within δ``; TOST)
            | "best" KEY "is" VALUE    best setting: the selection rule picks KEY=VALUE and it beats every
                                       other setting of KEY (``by δ``), or is not worse than each ``within δ``
    GROUP  := a group label of the sweep (``kd``, ``LoRA r=16``) or settings (``T=4``, ``distill.temperature=4``)

``<`` and ``<=`` read right to left; ``≥ ≤ ≈`` are accepted. δ is in the metric's units. "Beats" is
direction-aware: on a lower-is-better metric (``loss``, ``perplexity``, ``*_loss``, ``*_kl``) ``kd > none``
says kd's value is lower. A claim without ``on`` uses the plan's metric, else the task's primary metric,
else accuracy. Examples: ``kd > none on perplexity by 0.5``, ``best temperature is 4``,
``LoRA r=16 ~ Full fine-tune within 0.01``, ``H2: T=2 >= T=4 within 0.005 on accuracy``.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from entrenar_bench.errors import UsageError

KINDS = ("superiority", "noninferiority", "equivalence", "best")
TESTS = ("welch", "paired")
CORRECTION = "holm"
ID = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
ID_PREFIX = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)\s*:\s*(.*)", re.S)
METRIC = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CLAUSE = re.compile(r"\s+(on|by|within)\s+(\S+)\s*$", re.I)
OPERATOR = re.compile(r"(>=|≥|<=|≤|>|<|~|≈)")
BEST = re.compile(r"best\s+(\S+)\s+is\s+(\S(?:.*\S)?)", re.I | re.S)
SYMBOLS = {"≥": ">=", "≤": "<=", "≈": "~"}


@dataclass(frozen=True)
class Claim:
    """One registered claim. ``a`` is the group claimed better (for ``best``: ``KEY=VALUE``); ``within``
    says δ is a tolerance (non-inferiority, equivalence) rather than a margin to beat."""

    id: str
    text: str
    kind: str
    a: str
    b: str | None = None
    metric: str | None = None
    margin: float = 0.0
    within: bool = False
    key: str | None = None
    value: str | None = None

    def record(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _margin(claim: str, word: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"claim {claim!r}: '{word}' needs a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0 or (word == "within" and value == 0):
        raise UsageError(f"claim {claim!r}: '{word} {text}' must be a finite number "
                         f"{'above' if word == 'within' else 'of at least'} 0")
    return value


def _clauses(claim: str, text: str) -> tuple[str, dict[str, str]]:
    """The body and its trailing ``on``/``by``/``within`` clauses, each at most once."""
    found: dict[str, str] = {}
    while match := CLAUSE.search(text):
        word = match[1].lower()
        if word in found or (word != "on" and ({"by", "within"} & found.keys())):
            raise UsageError(f"claim {claim!r}: '{word}' given twice (or both 'by' and 'within')")
        found[word] = match[2]
        text = text[:match.start()]
    if "on" in found and not METRIC.fullmatch(found["on"]):
        raise UsageError(f"claim {claim!r}: {found['on']!r} is not a metric name (letters, digits, '_')")
    return text.strip(), found


def _body(claim: str, body: str, by: str | None) -> dict[str, Any]:
    best = BEST.fullmatch(body)
    if best:
        key, value = best[1], best[2].strip()
        return {"kind": "best", "a": f"{key}={value}", "key": key, "value": value}
    parts = OPERATOR.split(body)
    if len(parts) != 3:
        raise UsageError(f"claim {claim!r}: expected 'A > B', 'A >= B', 'A ~ B' or 'best KEY is VALUE'"
                         + (" (one comparison per claim)" if len(parts) > 3 else ""))
    a, op, b = parts[0].strip(), SYMBOLS.get(parts[1], parts[1]), parts[2].strip()
    if not a or not b:
        raise UsageError(f"claim {claim!r}: a group is missing on one side of '{op}'")
    if a.lower() == b.lower():
        raise UsageError(f"claim {claim!r}: compares {a!r} with itself")
    if op in ("<", "<="):
        a, b, op = b, a, op.replace("<", ">")
    kind = {">": "superiority", ">=": "noninferiority", "~": "equivalence"}[op]
    if kind != "superiority" and by != "within":
        raise UsageError(f"claim {claim!r}: '{op}' needs a tolerance, 'within δ'")
    if kind == "superiority" and by == "within":
        raise UsageError(f"claim {claim!r}: '>' takes a margin 'by δ' ('within δ' goes with '>=' or '~')")
    return {"kind": kind, "a": a, "b": b}


def parse_claim(text: str, claim_id: str | None = None) -> Claim:
    """A claim from its text (an ``ID:`` prefix names it, else ``claim_id``); UsageError naming the problem."""
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"claim {text!r}: empty (expected e.g. 'kd > none on loss')")
    text = " ".join(text.split())
    prefix = ID_PREFIX.fullmatch(text)
    if prefix:
        claim_id, text = prefix[1], prefix[2]
    if not claim_id or not ID.fullmatch(claim_id):
        raise UsageError(f"claim {text!r}: id {claim_id!r} is not letters, digits, '.', '_' or '-'")
    body, clauses = _clauses(text, text)
    by = "by" if "by" in clauses else "within" if "within" in clauses else None
    fields = _body(text, body, by)
    margin = _margin(text, by, clauses[by]) if by else 0.0
    return Claim(id=claim_id, text=text, metric=clauses.get("on"), margin=margin, within=by == "within", **fields)


def claim_from_record(record: Any) -> Claim:
    """A claim as recorded: parsed again from its text, so the record's fields never disagree with it."""
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise UsageError(f"a recorded claim is not a mapping with a 'text': {str(record)[:80]!r}")
    return parse_claim(record["text"], record.get("id"))


@dataclass(frozen=True)
class Plan:
    """The analysis plan: metric (None: the task's primary metric, else accuracy), test, α, the correction
    across the registered claims, and the runs planned per group (None: not stated)."""

    metric: str | None = None
    test: str = "welch"
    alpha: float = 0.05
    correction: str = CORRECTION
    runs: int | None = None

    def record(self) -> dict[str, Any]:
        return asdict(self)


def plan_from(values: dict[str, Any], base: Plan | None = None) -> Plan:
    """``base`` with ``values`` (None entries are not given) applied; UsageError naming a bad one."""
    values = {k: v for k, v in values.items() if v is not None}
    unknown = sorted(set(values) - set(Plan.__dataclass_fields__))
    if unknown:
        raise UsageError(f"analysis plan: unknown setting {unknown[0]!r} (known: metric, test, alpha, runs)")
    plan = replace(base or Plan(), **values)
    if plan.metric is not None and not (isinstance(plan.metric, str) and METRIC.fullmatch(plan.metric)):
        raise UsageError(f"analysis plan: metric {plan.metric!r} is not a metric name (letters, digits, '_')")
    if plan.test not in TESTS:
        raise UsageError(f"analysis plan: test {plan.test!r} is not one of {', '.join(TESTS)}")
    if isinstance(plan.alpha, bool) or not isinstance(plan.alpha, (int, float)) or not 0 < plan.alpha <= 0.5:
        raise UsageError(f"analysis plan: alpha {plan.alpha!r} is not a number in (0, 0.5]")
    if plan.correction != CORRECTION:
        raise UsageError(f"analysis plan: correction {plan.correction!r} is not {CORRECTION!r}")
    if plan.runs is not None and (isinstance(plan.runs, bool) or not isinstance(plan.runs, int) or plan.runs < 2):
        raise UsageError(f"analysis plan: runs {plan.runs!r} is not a whole number of at least 2")
    return replace(plan, alpha=float(plan.alpha))
