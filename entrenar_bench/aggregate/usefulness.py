"""Whether a sweep's students are worth anything: the trivial language models beside the teacher, and a verdict.

The baselines (``tasks/baselines.py``, recorded by every language-model run): the uniform cross-entropy
``ln V`` and the unigram cross-entropy of the held-out split under the training split's add-one smoothed token
frequencies. A group whose mean held-out (test) cross-entropy is not below the unigram's is *below the line*:
its students predict no better than word frequencies, and any comparison among such groups says nothing about
a useful student. A report never names a winner among groups that are all below the line without saying so.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from entrenar_bench.aggregate.collect import Collection
from entrenar_bench.tasks.baselines import SMOOTHING

WARNING = ("these students predict no better than word frequencies: the comparison says nothing about a useful "
           "student")
NO_WINNER = "no useful winner: every group is no better than the unigram baseline"


def baselines(collection: Collection) -> dict[str, Any] | None:
    """The sweep's baselines (means over its runs: they depend only on the data), or None where the runs
    recorded none (not a language model, or older records)."""
    done = collection.completed
    if "baseline_unigram" not in done or pd.to_numeric(done["baseline_unigram"], errors="coerce").dropna().empty:
        return None
    mean = {name: float(pd.to_numeric(done[f"baseline_{name}"], errors="coerce").mean())
            for name in ("uniform", "unigram", "val_unigram")}
    return {**mean, "metric": "loss", "unit": "nats (held-out cross-entropy)", "smoothing": SMOOTHING,
            "fitted_on": "the training split's target tokens"}


def verdict(summaries: list[dict[str, Any]], lines: dict[str, Any] | None) -> dict[str, Any] | None:
    """Per group: its mean test ``loss`` and whether it is below the unigram line (``useful``: strictly better);
    the groups below it, whether all are, and the warning where any is."""
    if lines is None:
        return None
    groups = {s["group"]: {"loss": s["loss"]["mean"],
                           "useful": s["loss"]["mean"] is not None and s["loss"]["mean"] < lines["unigram"]}
              for s in summaries}
    below = [g for g, v in groups.items() if not v["useful"]]
    return {"line": "unigram", "value": lines["unigram"], "groups": groups, "below_line": below,
            "all_below": bool(groups) and len(below) == len(groups),
            "warning": f"{', '.join(below)}: {WARNING}" if below else None}


def baseline_line(lines: dict[str, Any] | None, teacher: float | None) -> list[str]:
    """``Baselines (held-out cross-entropy, nats): uniform ln V 3.466, unigram 3.457 (...); teacher 1.207.``"""
    if lines is None:
        return []
    teacher_text = f"; teacher {teacher:.4f}" if teacher is not None else ""
    return [f"Baselines (test cross-entropy, nats; lower is better): uniform ln V {lines['uniform']:.4f}, unigram "
            f"{lines['unigram']:.4f} (fitted on {lines['fitted_on']}, {lines['smoothing']}){teacher_text}."]


def card_lines(collection: Collection, group: str, record: dict[str, Any]) -> list[str]:
    """The model card's section: the baselines beside the teacher, this student's (group's) cross-entropy,
    recovery and tokens, and the warning where its group, or every group, is not below the unigram line."""
    lines = baselines(collection)
    if lines is None:
        return []
    done = collection.completed
    means = pd.to_numeric(done["loss"], errors="coerce").groupby(done["group"]).mean()
    loss = means.get(group)
    teacher = ((record.get("teacher") or {}).get("metrics") or {}).get("loss")
    recovery = record.get("recovery")
    out = ["## Baselines and usefulness", "",
           f"- Test cross-entropy (nats, lower is better): this group {_nats(loss)}, this run "
           f"{_nats((record.get('metrics') or {}).get('loss'))}; teacher {_nats(teacher)}; uniform (ln V) "
           f"{_nats(lines['uniform'])}; unigram {_nats(lines['unigram'])} ({lines['smoothing']}, fitted on "
           f"{lines['fitted_on']}).",
           f"- Recovery of the teacher (0 = the student's start, 1 = the teacher): "
           f"{'not recorded' if not isinstance(recovery, (int, float)) else f'{recovery:.2f}'} (this run); "
           f"tokens trained on: {record.get('tokens_seen', 'not recorded')}."]
    if loss is None or not loss < lines["unigram"]:
        out.append(f"- **Warning: {WARNING}.**")
    if len(means) and not (means < lines["unigram"]).any():
        out.append(f"- **Caveat: {NO_WINNER}; this export is the best of students that are not useful.**")
    return out


def _nats(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and value == value else "—"
