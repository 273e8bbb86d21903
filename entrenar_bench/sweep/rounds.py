"""Where an auto sweep (``--runs auto``, sweep/sequential.py) keeps its rounds: one multirun folder each,
``<sweep>/round-01``, ``round-02``, … beside its plan ``sequential.json``. Read by aggregation, which sees
the runs of every round as one sweep."""

from __future__ import annotations

import os
from pathlib import Path

SEQUENTIAL_PLAN = "sequential.json"
ROUND = "round-{:02d}"


def is_sequential(sweep_dir: Path | str) -> bool:
    return os.path.lexists(Path(sweep_dir) / SEQUENTIAL_PLAN)


def round_dirs(sweep_dir: Path | str) -> list[Path]:
    """The round folders of an auto sweep, in order (links are not followed); [] for any other sweep."""
    if not is_sequential(sweep_dir):
        return []
    with os.scandir(sweep_dir) as entries:
        names = sorted(e.name for e in entries if e.name.startswith("round-") and e.is_dir(follow_symlinks=False))
    return [Path(sweep_dir) / name for name in names]
