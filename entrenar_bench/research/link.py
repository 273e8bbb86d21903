"""``--artifact FILE`` on sweep commands: check the artifact first, link the sweep after.

A link records the sweep directory, its start time, the command and the config digest
(:mod:`entrenar_bench.research.digest`) at link time. It is flagged, in the artifact and
on stderr, when the sweep started before the preregistration (or before a later
amendment), when the artifact has no preregistration, or when the config digest differs
from the one registered at the sweep's start (the changed files named).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

from entrenar_bench.errors import UsageError
from entrenar_bench.research.artifact import format_time, load_artifact, update_artifact, utc_now
from entrenar_bench.research.digest import changed_files, config_files, record_digest, tree_digest
from entrenar_bench.research.prereg import in_effect, registrations

log = logging.getLogger(__name__)


def check_artifact(path: Path) -> None:
    """Refuse, before anything runs, an artifact that is missing, malformed, foreign or not writable."""
    load_artifact(path)
    folder = path.resolve().parent
    if not (os.access(path, os.W_OK) and os.access(folder, os.W_OK)):
        raise UsageError(f"{path}: artifact not writable (the sweep could not be linked to it)")


def sweep_flags(artifact: dict, started: datetime, files: dict[str, str]) -> list[dict[str, str]]:
    """What a reader must know about this sweep's relation to the preregistration."""
    records = registrations(artifact)
    if not records:
        return [{"flag": "not_preregistered",
                 "detail": "the artifact had no preregistration when the sweep was linked"}]
    flags = []
    effective = in_effect(artifact, started)
    if effective is None:
        flags.append({"flag": "started_before_preregistration",
                      "detail": f"started {format_time(started)}, preregistered {records[0]['timestamp']}"})
        index, record = 0, records[0]
    else:
        index, record = effective
        flags += [{"flag": "started_before_amendment",
                   "detail": f"started {format_time(started)}, amendment {n} recorded {records[n]['timestamp']}"}
                  for n in range(index + 1, len(records))]
    changes = changed_files(record["config_files"], files)
    if tree_digest(files) != record["config_digest"] or changes:
        which = "preregistered" if index == 0 else f"amendment {index}"
        flags.append({"flag": "config_changed",
                      "detail": f"config digest differs from the {which} one: {', '.join(changes) or 'digest only'}"})
    return flags


def link_sweep(artifact_path: Path, sweep_dir: Path, started_at: datetime, command: list[str]) -> None:
    """Append the sweep to the artifact's ``sweeps``, flagged where it departs from the preregistration."""
    files = config_files()
    with update_artifact(artifact_path) as artifact:
        flags = sweep_flags(artifact, started_at, files)
        sweeps = artifact.setdefault("sweeps", [])
        entry = {
            "dir": str(Path(sweep_dir).resolve()),
            "started": format_time(started_at),
            "linked": utc_now(),
            "command": [str(part) for part in command],
            "config_digest": tree_digest(files),
            "flags": flags,
            "previous_sha256": sweeps[-1].get("record_sha256") if sweeps else None,
        }
        entry["record_sha256"] = record_digest(entry)
        sweeps.append(entry)
    for flag in flags:
        log.warning("%s: sweep %s flagged %s: %s", artifact_path, sweep_dir, flag["flag"], flag["detail"])
