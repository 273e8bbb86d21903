"""Pre-registration: hypothesis, methods, claims, analysis plan and config digest fixed, with a timestamp,
before the data (claims and plan: research/hypotheses.py).

A second ``preregister`` never changes the first: it appends a dated amendment. Every record
(the preregistration, each amendment, each sweep link) carries ``record_sha256``, the digest
of its own content, and each later record the digest of the one before (``previous_sha256``):
an edit by hand, a deleted amendment or a reordered link no longer matches, and the bundle
says so. This makes changes evident, not impossible: whoever recomputes every digest can
rewrite history, which is why bundles are also digested and shared.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from entrenar_bench.research.artifact import parse_time, update_artifact, utc_now
from entrenar_bench.research.digest import config_files, record_digest, sha256_text, tree_digest
from entrenar_bench.research.hypotheses import DRAFT_KEYS, new_fields


def registration(hypothesis: str, methods: str, previous: str | None = None, reason: str | None = None,
                 fields: dict | None = None) -> dict:
    """One registration record, digested; ``previous`` chains an amendment to the record before it;
    ``fields`` (claims, plan) are part of what the digest covers."""
    files = config_files()
    record: dict[str, Any] = {
        "timestamp": utc_now(),
        "hypothesis": hypothesis,
        "hypothesis_sha256": sha256_text(hypothesis),
        "methods": methods,
        "methods_sha256": sha256_text(methods),
        "config_digest": tree_digest(files),
        "config_files": files,
        **(fields or {}),
    }
    if previous is not None:
        record = {**record, "reason": reason, "previous_sha256": previous}
    record["record_sha256"] = record_digest(record)
    return record


def preregister(path: Path, hypothesis: str, methods: str, reason: str | None = None,
                claims: list[str] | None = None, plan: dict | None = None) -> tuple[dict, int]:
    """Record the preregistration, or append an amendment, with the claims and plan given here or drafted in
    the artifact (the draft then moves into the record); returns (record, amendment number or 0)."""
    with update_artifact(path) as artifact:
        prereg = artifact.get("preregistration")
        fields = new_fields(artifact, registrations(artifact), claims or [], plan or {})
        for key in DRAFT_KEYS:
            artifact.pop(key, None)
        if prereg is None:
            record = registration(hypothesis, methods, fields=fields)
            artifact["preregistration"] = {**record, "amendments": []}
            return record, 0
        amendments = prereg.setdefault("amendments", [])
        previous = (amendments[-1] if amendments else prereg).get("record_sha256")
        record = registration(hypothesis, methods, previous, reason, fields)
        amendments.append(record)
        return record, len(amendments)


def registrations(artifact: dict) -> list[dict]:
    """The preregistration followed by its amendments, oldest first ([] when not preregistered)."""
    prereg = artifact.get("preregistration")
    return [] if prereg is None else [prereg, *prereg.get("amendments", [])]


def in_effect(artifact: dict, moment: datetime) -> tuple[int, dict] | None:
    """(index, registration) in effect at ``moment``: the latest recorded at or before it."""
    current, moment = None, moment.astimezone(timezone.utc)
    for i, record in enumerate(registrations(artifact)):
        if parse_time(record["timestamp"]) <= moment:
            current = (i, record)
    return current


def _chain_problems(records: list[dict], name) -> list[str]:
    problems, previous = [], None
    for i, record in enumerate(records):
        if record.get("record_sha256") != record_digest(record):
            problems.append(f"{name(i)} was edited after it was recorded (record_sha256 does not match)")
        if i and record.get("previous_sha256") != previous:
            problems.append(f"{name(i)} does not follow the record before it (previous_sha256 does not match)")
        previous = record.get("record_sha256")
    return problems


def integrity_problems(artifact: dict) -> list[str]:
    """Every record whose digest or chain no longer matches: hand edits, deletions, reordering."""
    problems = _chain_problems(registrations(artifact),
                               lambda i: "the preregistration" if i == 0 else f"amendment {i}")
    problems += _chain_problems(artifact.get("sweeps", []), lambda i: f"sweep link {i + 1}")
    return problems
