"""A pruning study on disk: each group's held-out metrics right after pruning in the compare JSON, and the
exported student's card saying how it was pruned."""

import json
from pathlib import Path

import torch
from runs_on_disk import lm_metrics, write_run

from entrenar_bench.cli.main import COMMAND_MODULES
from entrenar_bench.cli.main import run_cli as cli
from entrenar_bench.models.saving import STUDENT_DIR, save_student

PRUNING = {"method": "block_influence", "keep": 3, "layers": [0, 1, 5], "scores": [0.9, 0.2, 0.01, 0.03, 0.05, 0.8],
           "teacher_depth": 6, "widths": {"hidden": 24, "intermediate": 32, "heads": 6, "kv_heads": 2},
           "teacher_widths": {"hidden": 36, "intermediate": 48, "heads": 6, "kv_heads": 2}, "params": 20136,
           "teacher_params": 45036, "params_target": 20000, "calibration_blocks": 32, "calibration_tokens": 2016}


def pruning_sweep(root: Path) -> Path:
    """Two pruning methods, kd, two seeds each; the block-influence runs start lower."""
    sweep = root / "study"
    for g, (method, start, loss) in enumerate((("first", 9.5, 3.0), ("block_influence", 6.5, 2.5))):
        for seed in range(2):
            job = write_run(sweep, 10 * g + seed, seed=seed, config={"student.method": method},
                            metrics=lm_metrics(loss + 0.01 * seed, loss + 0.02, 0.3),
                            overrides=["+bench=compare", "distill=kd", f"student.method={method}", f"seed={seed}"])
            record = json.loads((job / "result.json").read_text())
            record["metrics_before"] = lm_metrics(start + 0.1 * seed, start, 0.1)
            record["pruning"] = {**PRUNING, "method": method}
            (job / "result.json").write_text(json.dumps(record))
            torch.manual_seed(seed)
            save_student(torch.nn.Linear(3, 2), job / STUDENT_DIR, model_config={"_target_": "torch.nn.Linear"})
    return sweep


def run(argv, capsys):
    code = cli([str(a) for a in argv], "entrenar-bench", COMMAND_MODULES)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def test_the_compare_json_gives_each_groups_loss_right_after_pruning(tmp_path, capsys):
    code, out, err = run(["aggregate", pruning_sweep(tmp_path), "--format", "json"], capsys)
    assert code == 0, err
    groups = {g["group"]: g for g in json.loads(out)["groups"]}
    assert groups["first"]["before"]["loss"]["mean"] == 9.55
    assert groups["block_influence"]["before"]["loss"]["mean"] == 6.55


def test_the_exported_card_says_how_the_student_was_pruned(tmp_path, capsys):
    code, out, err = run(["export", pruning_sweep(tmp_path), "--to", tmp_path / "out"], capsys)
    assert code == 0, err
    card = (Path(out.strip()) / "README.md").read_text()
    assert "## Pruning" in card
    assert ("- Depth: `block_influence`, ShortGPT block influence" in card
            and "3 of the teacher's 6 layers kept: 0, 1, 5." in card)
    assert "- Scores (block influence per teacher layer): 0.900, 0.200, 0.010, 0.030, 0.050, 0.800." in card
    assert "- Width: hidden channels 36 → 24; MLP neurons 48 → 32, the units of largest mean activation" in card
    assert "target `student.params=20000`" in card
    assert "- Parameters: 20136 (44.7 % of the teacher's 45036)." in card
    assert "- Calibration: the first 32 blocks of the training split (2016 tokens)" in card
    (after_pruning,) = [line for line in card.splitlines() if line.startswith("- Right after pruning, before training")]
    assert "loss 6.5000" in after_pruning and "val_" not in after_pruning


def test_every_pruning_key_sweeps_one_group_per_combination(tmp_path, capsys):
    sweep = tmp_path / "grid"
    job = 0
    for method in ("first", "block_influence", "angular"):
        for keep in (10, 15):
            for seed in range(2):
                write_run(sweep, job, seed=seed, config={"student.method": method, "student.keep": keep},
                          metrics=lm_metrics(3.0 + keep / 100, 3.1, 0.3))
                job += 1
    code, out, err = run(["aggregate", sweep, "--format", "json"], capsys)
    assert code == 0, err
    groups = {g["group"]: g["n"] for g in json.loads(out)["groups"]}
    assert len(groups) == 6 and set(groups.values()) == {2}, groups
