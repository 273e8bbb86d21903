"""The model card's account of how its student was pruned from the teacher (the run record's ``pruning``):
depth (method, kept layers, the scores they were chosen by), widths, parameters, calibration blocks, and the
held-out metrics right after pruning (``metrics_before``). Nothing for a student not pruned from a teacher."""

from __future__ import annotations

from typing import Any

DEPTH = {
    "first": "the first K layers",
    "spread": "K layers spread evenly, first and last kept",
    "list": "an explicit list of layers (`student.layers`)",
    "block_influence": "ShortGPT block influence: the layers of lowest 1 − cos(h_in, h_out) on the calibration "
                       "blocks dropped",
    "angular": "angular distance (Gromov et al.): the contiguous block [l, l+n) of smallest "
               "arccos(cos(h_l, h_l+n))/π on the calibration blocks dropped, the last layer kept",
}
WIDTHS = (("hidden", "hidden channels"), ("intermediate", "MLP neurons"), ("heads", "attention heads"),
          ("kv_heads", "key/value groups"))


def _numbers(values: list[Any], digits: int = 3) -> str:
    return ", ".join(f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in values)


def pruning_lines(record: dict[str, Any]) -> list[str]:
    """``## Pruning`` lines (with a trailing blank line), or none."""
    p = record.get("pruning")
    if not isinstance(p, dict):
        return []
    method = p.get("method")
    params, teacher_params = p.get("params"), p.get("teacher_params")
    share = f" ({100 * params / teacher_params:.1f} % of the teacher's {teacher_params})" \
        if isinstance(params, int) and isinstance(teacher_params, int) and teacher_params else ""
    lines = ["## Pruning", "",
             f"- Depth: `{method}`, {DEPTH.get(method, method)}: {p.get('keep')} of the teacher's "
             f"{p.get('teacher_depth', '?')} layers kept: {_numbers(p.get('layers') or [])}."]
    if p.get("scores"):
        what = "block influence per teacher layer" if method == "block_influence" else \
            "angular distance per start of the dropped block"
        lines.append(f"- Scores ({what}): {_numbers(p['scores'])}.")
    widths, teacher = p.get("widths") or {}, p.get("teacher_widths") or {}
    changed = [f"{label} {teacher.get(key)} → {widths[key]}" for key, label in WIDTHS
               if key in widths and widths[key] != teacher.get(key)]
    lines.append("- Width: " + ("; ".join(changed) + ", the units of largest mean activation magnitude on the "
                                "calibration blocks kept (Minitron)" if changed else "the teacher's (not pruned)")
                 + (f"; target `student.params={p['params_target']}`" if p.get("params_target") else "") + ".")
    lines.append(f"- Parameters: {params}{share}.")
    if p.get("calibration_blocks"):
        lines.append(f"- Calibration: the first {p['calibration_blocks']} blocks of the training split "
                     f"({p.get('calibration_tokens')} tokens); never a validation or test block.")
    before = record.get("metrics_before")
    if isinstance(before, dict) and before:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in before.items()
                          if isinstance(v, (int, float)) and not str(k).startswith("val_"))
        lines.append(f"- Right after pruning, before training (test split): {shown}.")
    return lines + [""]
