"""The unit of replication of a group: what its runs are independent samples of.

With one teacher (or none) the unit is the student seed: each run is a sample, and a conclusion holds
for that one teacher. With two or more teachers (``--teachers K``, ``teacher.seed`` swept) the teacher
is a random factor and the unit is the teacher: a teacher's runs are averaged over the student seeds
and the per-teacher means are the samples, so tests, standard deviations and intervals generalise
over teachers (Welch's test on per-teacher means) and a conclusion rests on K teachers.

Runs that differ only in the seed of a teacher they never used (``none`` in a ``--teachers`` sweep)
are one computation, not K samples: they are averaged per student seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

SEED, TEACHER = "seed", "teacher"


@dataclass
class Units:
    kind: str  # SEED or TEACHER
    ids: list[int]  # the student seeds, or the teacher seeds
    values: list[float]  # one per unit
    runs: list[float]  # one per distinct run (student seed x teacher), for plots
    teachers: list[int]  # the seeds of the teachers the runs used; empty: no teacher


def teacher_seeds(rows: pd.DataFrame) -> list[int]:
    return sorted(int(t) for t in rows["teacher_seed"].dropna().unique()) if "teacher_seed" in rows else []


def units(rows: pd.DataFrame, metric: str = "accuracy") -> Units:
    """The samples of ``metric`` (a column) in one group's completed ``rows``; none where no run recorded it."""
    if metric not in rows:
        return Units(SEED, [], [], [], teacher_seeds(rows))
    rows = rows.assign(value=pd.to_numeric(rows[metric], errors="coerce")).dropna(subset=["value", "seed"])
    teachers = teacher_seeds(rows)
    distinct = rows.assign(teacher=rows.get("teacher_seed", pd.Series(dtype=float)).fillna(-1)) \
        .groupby(["seed", "teacher"], sort=True)["value"].mean().reset_index()
    key, kind = ("teacher", TEACHER) if len(teachers) >= 2 else ("seed", SEED)
    per_unit = distinct.groupby(key, sort=True)["value"].mean()
    return Units(kind, [int(i) for i in per_unit.index], per_unit.tolist(), distinct["value"].tolist(), teachers)
