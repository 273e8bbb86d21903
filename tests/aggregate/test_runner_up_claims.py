"""The best group "won" only when the report's own test (its family: Holm over its pairs, Welch or paired) is
significant in its favour; otherwise it was selected on validation and is not significantly different from the
runner-up. The model card, the text and the JSON reports say the same, with the report's own p."""

import json
from pathlib import Path

import pytest
import torch
from runs_on_disk import lm_metrics, write_run

from entrenar_bench.aggregate.bench_reports import compare_report
from entrenar_bench.aggregate.collect import collect
from entrenar_bench.aggregate.export import export
from entrenar_bench.aggregate.report import generic_report, p_is
from entrenar_bench.cli.main import COMMAND_MODULES
from entrenar_bench.cli.main import run_cli as cli
from entrenar_bench.models.saving import STUDENT_DIR, save_student

# (validation loss, test loss per seed): kd has the lowest validation loss, mse is the runner-up; none is last on
# validation and spread widely on test, so kd vs mse has the family's smallest p and Holm triples it (paired: raw
# p 0.020, a family of one would call it a win; Holm over three: 0.061)
LOSSES = {"kd": (2.10, [2.08, 2.11, 2.10]), "mse": (2.11, [2.12, 2.16, 2.13]), "none": (2.50, [2.05, 2.25, 2.15])}


def three_groups(root: Path) -> Path:
    sweep = root / "sweep"
    for g, (name, (val, tests)) in enumerate(LOSSES.items()):
        for seed, loss in enumerate(tests):
            job = write_run(sweep, 10 * g + seed, seed=seed, config={"distill.name": name},
                            metrics=lm_metrics(loss, val + 0.001 * seed, 0.3),
                            overrides=[f"distill={name}", f"seed={seed}", "+experiment=lm"])
            torch.manual_seed(10 * g + seed)
            save_student(torch.nn.Linear(3, 2), job / STUDENT_DIR, model_config={"_target_": "torch.nn.Linear"})
    return sweep


def family_p(sweep: Path, test: str) -> float:
    document, _ = generic_report(collect(sweep), test=test)
    (pair,) = [p for p in document["pairs"] if {p["a"], p["b"]} == {"kd", "mse"}]
    assert len(document["pairs"]) == 3 and pair["p_adjusted"] == pytest.approx(3 * pair["p_value"])  # Holm
    return pair["p_adjusted"]


@pytest.mark.parametrize("paired", [False, True])
def test_the_card_says_not_significantly_different_with_the_reports_holm_p(tmp_path, paired):
    sweep = three_groups(tmp_path)
    p = family_p(sweep, "paired" if paired else "welch")
    assert p >= 0.05
    card = export(sweep, tmp_path / "out", paired=paired).card
    assert f"- kd was selected on validation; not significantly different from mse ({p_is(p)}, Holm)" in card
    assert " won " not in card
    assert ("paired t-test" if paired else "Welch's t-test") + ", Holm over the report's 3 pairs" in card


def test_text_and_json_reports_use_the_same_wording(tmp_path, capsys):
    sweep = three_groups(tmp_path)
    p = family_p(sweep, "welch")
    document, text = generic_report(collect(sweep))
    assert document["best"]["group"] == "kd" and document["best"]["runner_up"] == "mse"
    assert document["best"]["significantly_better_than_runner_up"] is False
    assert document["best"]["vs_runner_up"]["p_adjusted"] == pytest.approx(p)
    assert f"kd was selected on validation; not significantly different from mse ({p_is(p)}, Holm)." in text
    document, text = compare_report(collect(sweep))
    assert document["best"]["outcome"] == f"was selected on validation; not significantly different from mse " \
                                          f"({p_is(p)}, Holm)"
    assert document["best"]["vs_runner_up"]["a"] == "kd" and document["best"]["vs_runner_up"]["mean_diff"] < 0
    code = cli(["aggregate", str(sweep), "--format", "json", "--paired"], "entrenar-bench", COMMAND_MODULES)
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["best"]["vs_runner_up"]["p_adjusted"] == pytest.approx(family_p(sweep, "paired"))


def test_a_significant_win_says_won_and_one_against_the_winner_does_not(tmp_path):
    sweep = three_groups(tmp_path)
    for job in sweep.glob("1?"):  # mse: clearly worse on test, still the runner-up on validation
        path = job / "result.json"
        record = json.loads(path.read_text())
        record["metrics"]["loss"] += 0.5
        path.write_text(json.dumps(record))
    card = export(sweep, tmp_path / "won").card
    assert "- kd won against the runner-up, mse: difference in test loss (kd − mse, lower is better) -0.5" in card
    for job in sweep.glob("1?"):  # mse now clearly better on test: kd, selected on validation, lost
        path = job / "result.json"
        record = json.loads(path.read_text())
        record["metrics"]["loss"] -= 1.0
        path.write_text(json.dumps(record))
    _, text = generic_report(collect(sweep))
    assert "kd was selected on validation; on test it is significantly worse than mse (p " in text
