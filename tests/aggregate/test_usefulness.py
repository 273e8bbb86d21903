"""Recovery, tokens to recover, the trivial baselines and the usefulness verdict in reports and the model card,
on synthetic run directories (real-run checks: tests/run/test_budget_run.py, tests/e2e/test_budget_sweep.py)."""

import json

import pandas as pd
import pytest
import torch

from runs_on_disk import lm_metrics, write_run
from entrenar_bench.aggregate.bench_reports import compare_report
from entrenar_bench.aggregate.collect import collect
from entrenar_bench.aggregate.recovery import token_band, tokens_to_reach
from entrenar_bench.aggregate.usefulness import NO_WINNER, WARNING
from entrenar_bench.cli.main import COMMAND_MODULES, run_cli
from entrenar_bench.models.saving import STUDENT_DIR, save_student

UNIGRAM, UNIFORM, TEACHER = 3.0, 3.4657, 1.0


def sweep_of(root, losses: dict[str, float], curve: bool = True, curve_teacher: bool = True):
    """kd and none, two seeds each, started at 3.5, the teacher at 1.0; each run with a held-out curve that
    falls linearly from 3.5 by 0.5 every 1,000 tokens to its final loss."""
    teacher_dir = root / "teacher"
    teacher_dir.mkdir(parents=True)
    (teacher_dir / "teacher.json").write_text(json.dumps({"metrics": {"loss": TEACHER, "accuracy": 0.5},
                                                          "time_s": 9.0}))
    sweep = root / "sweep"
    for g, (name, loss) in enumerate(losses.items()):
        for seed in range(2):
            job = write_run(sweep, 10 * g + seed, seed=seed, config={"distill.name": name, "teacher.seed": 0},
                            metrics=lm_metrics(loss + 0.01 * seed, loss, 0.2),
                            overrides=["+bench=compare", f"distill={name}", f"seed={seed}", "+experiment=lm"])
            record = json.loads((job / "result.json").read_text())
            record.update(metrics_before=lm_metrics(3.5, 3.5, 0.03), tokens_seen=4000, flops={"total": 1e9},
                          baselines={"uniform": UNIFORM, "unigram": UNIGRAM, "val_unigram": UNIGRAM},
                          curve={"teacher": TEACHER} if name == "kd" and curve_teacher else None,
                          teacher={"cache": str(teacher_dir)} if name == "kd" else None)
            (job / "result.json").write_text(json.dumps(record))
            if curve:
                tokens = range(0, 5000, 1000)
                pd.DataFrame({"epoch": 0, "tokens": list(tokens),
                              "heldout/loss": [max(loss, 3.5 - 0.5 * i) for i in range(len(tokens))]}
                             ).to_csv(job / "metrics.csv", index=False)
            save_student(torch.nn.Linear(3, 2), job / STUDENT_DIR, model_config={"_target_": "torch.nn.Linear"})
    return sweep


def test_tokens_to_recovery_are_interpolated_on_the_mean_curve_or_not_reached():
    band = token_band(pd.DataFrame({"run": "a", "k": range(4), "tokens": [0, 100, 200, 300],
                                    "value": [5.0, 4.0, 3.0, 2.9]}))
    reached = tokens_to_reach(band, teacher=1.0)   # recovery 0, 0.25, 0.5, 0.525
    assert reached == {"50%": pytest.approx(200.0), "80%": None, "90%": None}
    assert tokens_to_reach(token_band(pd.DataFrame({"run": "a", "k": [0, 1], "tokens": [0, 100],
                                                    "value": [5.0, 2.0]})), 1.0)["50%"] == pytest.approx(200 / 3)
    assert tokens_to_reach(band, teacher=None) == {"50%": None, "80%": None, "90%": None}


def test_groups_below_the_unigram_line_are_flagged_and_no_winner_is_declared(tmp_path):
    document, text = compare_report(collect(sweep_of(tmp_path, {"kd": 3.2, "none": 3.3})))
    u = document["usefulness"]
    assert u["all_below"] and sorted(u["below_line"]) == ["kd", "none"] and u["value"] == UNIGRAM
    assert document["best"]["useful"] is False and document["best"]["caveat"] == NO_WINNER
    assert (document["baselines"]["uniform"] == pytest.approx(UNIFORM)
            and "add-one" in document["baselines"]["smoothing"])
    assert f"WARNING: kd, none: {WARNING}." in text and f"Caveat: {NO_WINNER}." in text
    assert any(WARNING in note for note in document["notes"])
    assert "uniform ln V 3.4657, unigram 3.0000" in text


def test_recovery_and_tokens_to_recover_per_group(tmp_path):
    document, text = compare_report(collect(sweep_of(tmp_path, {"kd": 1.5, "none": 2.5})))
    rows = {r["strategy"]: r for r in document["results"]}
    # (3.5 - 1.5) / (3.5 - 1.0) = 0.8 (mean of 1.5 and 1.51); none measured against the sweep's teacher
    assert rows["kd"]["recovery"]["mean"] == pytest.approx((2.0 + 1.99) / 2 / 2.5)
    assert rows["none"]["recovery"]["mean"] == pytest.approx((1.0 + 0.99) / 2 / 2.5)
    assert rows["kd"]["tokens_to_recovery"] == {"50%": pytest.approx(2500.0), "80%": pytest.approx(4000.0),
                                                "90%": None}
    assert rows["none"]["tokens_to_recovery"]["50%"] is None and rows["kd"]["tokens_seen"] == 4000
    assert rows["kd"]["before"]["loss"]["mean"] == pytest.approx(3.5) and rows["kd"]["before"]["loss"]["n"] == 2
    assert "Before training (test loss; a pruned student: right after pruning): kd 3.50 ± 0.00; none 3.50" in text
    assert "kd 2,500 / 4,000 / not reached" in text and "none not reached / not reached / not reached" in text
    assert document["usefulness"]["below_line"] == [] and "WARNING" not in text and "Caveat" not in text
    assert document["best"]["useful"] is True


def test_the_exported_card_shows_the_baselines_and_flags_a_useless_student(tmp_path, capsys):
    sweep = sweep_of(tmp_path, {"kd": 3.2, "none": 3.3}, curve=False)
    code = run_cli(["export", str(sweep), "--to", str(tmp_path / "out")], "entrenar-bench", COMMAND_MODULES)
    assert code == 0, capsys.readouterr().err
    card = (tmp_path / "out" / "README.md").read_text()
    assert "## Baselines and usefulness" in card and "uniform (ln V) 3.4657; unigram 3.0000" in card
    assert f"**Warning: {WARNING}.**" in card and NO_WINNER in card


def test_without_the_teachers_value_on_the_subset_the_tokens_to_recover_are_unknown_not_unreached(tmp_path):
    document, text = compare_report(collect(sweep_of(tmp_path, {"kd": 1.5, "none": 2.5}, curve_teacher=False)))
    assert all(r["tokens_to_recovery"] is None for r in document["results"])
    assert "not reached" not in text and document["recovery"]["curve"]["teacher"] is None
