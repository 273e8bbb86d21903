"""The claims and analysis plan of a pre-registration, across its amendments.

Each record (the preregistration or an amendment) may carry ``claims`` (those it adds, or restates under
an existing id: an edit) and ``plan`` (the whole plan in effect from then on); both are inside the record
its ``record_sha256`` covers. A claim is never withdrawn. A draft written by hand in artifact.yaml (top-level
``claims:``, a list of texts or ``{ID: text}``, and ``plan:``) is checked and moved into the next record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from entrenar_bench.errors import UsageError
from entrenar_bench.research.claims import Claim, Plan, claim_from_record, parse_claim, plan_from

DRAFT_KEYS = ("claims", "plan")


@dataclass(frozen=True)
class Registered:
    """A claim as it stands now, when it was first registered (record index and time) and each later edit."""

    claim: Claim
    record: int
    registered: str
    edits: tuple[tuple[int, str], ...] = ()


def registered_claims(records: list[dict]) -> list[Registered]:
    """Every claim of the records, in registration order, as last restated."""
    found: dict[str, Registered] = {}
    for index, record in enumerate(records):
        for item in record.get("claims") or []:
            claim = claim_from_record(item)
            old = found.get(claim.id)
            if old is None:
                found[claim.id] = Registered(claim, index, record["timestamp"])
            elif old.claim.text != claim.text:
                found[claim.id] = Registered(claim, old.record, old.registered,
                                             (*old.edits, (index, record["timestamp"])))
    return list(found.values())


def registered_plan(records: list[dict]) -> tuple[Plan, list[tuple[int, str]]]:
    """The plan in effect (the default one if none was recorded) and each (record index, time) that changed it."""
    plan, seen, changes = Plan(), False, []
    for index, record in enumerate(records):
        if isinstance(record.get("plan"), dict):
            new = plan_from(record["plan"])
            if seen and new != plan:
                changes.append((index, record["timestamp"]))
            plan, seen = new, True
    return plan, changes


def _draft_claims(artifact: dict) -> list[tuple[str | None, Any]]:
    items = artifact.get("claims")
    if items is None:
        return []
    if not isinstance(items, list):
        raise UsageError("artifact 'claims' is not a list of claims (texts, or 'ID: text')")
    drafts = []
    for item in items:
        if isinstance(item, dict) and len(item) == 1:
            (claim_id, text), = item.items()
            drafts.append((str(claim_id), text))
        elif isinstance(item, str):
            drafts.append((None, item))
        else:
            raise UsageError(f"artifact 'claims': {str(item)[:80]!r} is not a claim text or 'ID: text'")
    return drafts


def _next_id(taken: set[str]) -> str:
    number = len(taken) + 1
    while f"H{number}" in taken:
        number += 1
    return f"H{number}"


def new_fields(artifact: dict, records: list[dict], texts: list[str], plan_options: dict[str, Any]) -> dict:
    """``claims`` and ``plan`` for the next record: the artifact's draft, then ``texts`` and ``plan_options``
    from the command line; {} when none of them gives anything. Unnamed claims get the next free ``H<n>``."""
    draft_plan = artifact.get("plan")
    if draft_plan is not None and not isinstance(draft_plan, dict):
        raise UsageError("artifact 'plan' is not a mapping (metric, test, alpha, runs)")
    given = [*_draft_claims(artifact), *((None, text) for text in texts)]
    options = {k: v for k, v in plan_options.items() if v is not None}
    if not given and not options and draft_plan is None:
        return {}
    taken = {r.claim.id for r in registered_claims(records)}
    claims: list[Claim] = []
    for claim_id, text in given:
        claim = parse_claim(text, claim_id or _next_id(taken))
        if claim.id in {c.id for c in claims}:
            raise UsageError(f"claim {claim.text!r}: id {claim.id} is given twice")
        claims.append(claim)
        taken.add(claim.id)
    plan = plan_from({**(draft_plan or {}), **options}, registered_plan(records)[0])
    return {"claims": [c.record() for c in claims], "plan": plan.record()}
