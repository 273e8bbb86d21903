"""The metric that decides: read from the runs, direction-aware in selection, tests, tables and JSON; --metric
for any recorded metric; an unknown one named with the known ones (synthetic run directories)."""

import pytest
from runs_on_disk import lm_metrics, write_run

from entrenar_bench.aggregate import selection
from entrenar_bench.aggregate.bench_reports import ablation_report, compare_report, param_sweep_report
from entrenar_bench.sweep.commands import sweep_command
from entrenar_bench.aggregate.collect import collect
from entrenar_bench.aggregate.metrics import ACCURACY, LOSS, Metric, check_name
from entrenar_bench.aggregate.report import generic_report
from entrenar_bench.errors import UsageError

# kd: the lower (better) cross-entropy but the lower top-1 accuracy; none the reverse (what a language model does)
KD = [(2.10, 2.12, 0.30), (2.11, 2.13, 0.31), (2.12, 2.14, 0.30)]
NONE = [(2.30, 2.31, 0.34), (2.31, 2.32, 0.35), (2.32, 2.33, 0.34)]


def kd_vs_none(tmp_path, primary=True):
    sweep = tmp_path / "sweep"
    for name, runs, offset in (("kd", KD, 0), ("none", NONE, 10)):
        for seed, (loss, val_loss, acc) in enumerate(runs):
            write_run(sweep, offset + seed, seed=seed, metrics=lm_metrics(loss, val_loss, acc),
                      config={"distill.name": name}, primary={"name": "loss", "lower_is_better": True} if primary
                      else None)
    return sweep


def test_the_runs_primary_metric_decides_lower_is_better(tmp_path):
    document, text = compare_report(collect(kd_vs_none(tmp_path)))
    assert document["metric"] == {"name": "loss", "lower_is_better": True}
    best = document["best"]
    assert best["strategy"] == "kd" and best["selected_by"] == "val_loss"
    assert best["metric"]["mean"] == pytest.approx(2.11) and best["metric"]["val_mean"] == pytest.approx(2.13)
    assert best["accuracy"] == pytest.approx(0.30333, abs=1e-4)  # accuracy fields kept
    assert document["significant"] == ["kd > none"]  # better on the metric: the lower loss
    assert best["tie_rule"].startswith("lowest mean validation loss; ties (within 1e-9) go to the higher mean "
                                       "validation accuracy")
    row = next(r for r in document["results"] if r["strategy"] == "kd")
    assert row["metric"]["name"] == "loss" and row["accuracy"] == pytest.approx(0.30333, abs=1e-4)
    assert "Strategy | Loss | Accuracy |" in text.replace("  ", " ").replace("  ", " ")
    assert "Best strategy: kd (loss: 2.110 on test; chosen on validation loss 2.130)" in text
    assert "on test loss, lower is better, '>' = better" in text
    line = next(line for line in text.splitlines() if line.startswith("- kd > none: "))
    assert line.startswith("- kd > none: -0.2000")  # kd − none: a lower loss


def test_accuracy_chosen_by_name_reverses_the_verdict(tmp_path):
    document, text = compare_report(collect(kd_vs_none(tmp_path), "accuracy"))
    assert document["metric"] == ACCURACY.as_dict() and document["best"]["strategy"] == "none"
    assert document["significant"] == ["none > kd"] and document["best"]["selected_by"] == "val_accuracy"


def test_without_a_recorded_primary_metric_accuracy_decides(tmp_path):
    collection = collect(kd_vs_none(tmp_path, primary=False))
    assert collection.metric == ACCURACY
    assert compare_report(collection)[0]["best"]["strategy"] == "none"


@pytest.mark.parametrize("name, lower", [("perplexity", True), ("teacher_kl", True), ("loss", True),
                                         ("accuracy", False)])
def test_any_recorded_metric_with_its_direction(tmp_path, name, lower):
    collection = collect(kd_vs_none(tmp_path, primary=False), name)
    assert collection.metric == Metric(name, lower)
    document, _ = generic_report(collection)
    assert document["metric"] == {"name": name, "lower_is_better": lower}
    assert document["best"]["group"] == ("kd" if lower else "none")


def test_an_unknown_metric_names_the_known_ones(tmp_path):
    with pytest.raises(UsageError, match="--metric rouge: not recorded by these runs; known: accuracy, loss, "
                                         "perplexity, teacher_kl"):
        collect(kd_vs_none(tmp_path), "rouge")


@pytest.mark.parametrize("name, message", [("val_loss", "name the test metric (loss)"),
                                           ("a-b", "letters, digits and underscores"), ("", "letters")])
def test_metric_names_are_checked_before_any_run(name, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_name(name)


def test_best_temperature_is_the_lowest_validation_loss(tmp_path):
    sweep = tmp_path / "sweep"
    for job, (t, val_loss) in enumerate([(1.0, 2.3), (2.0, 2.1), (4.0, 2.2)]):
        for seed in range(3):
            write_run(sweep, 10 * job + seed, seed=seed, config={"distill.temperature": t},
                      metrics=lm_metrics(val_loss + 0.01 * seed, val_loss, 0.5 - val_loss / 10))
    document, text = param_sweep_report(collect(sweep), sweep_command("temperature"))
    assert document["best_temperature"] == 2.0 and document["best"]["selected_by"] == "val_loss"
    assert document["best"]["runner_up"]["temperature"] == 4.0
    assert "Best temperature: 2.0 (loss: 2.110 ± 0.010 on test; chosen on validation loss 2.100)" in text
    assert "in test loss (lower is better), Welch's t-test" in text
    assert [r["metric"]["mean"] for r in document["results"]] == pytest.approx([2.31, 2.11, 2.21])


def test_ablation_deltas_are_in_the_metric(tmp_path):
    sweep = tmp_path / "sweep"
    for job, (ablate, loss) in enumerate([("full", 2.0), ("temperature", 2.4)]):
        for seed in range(2):
            write_run(sweep, 10 * job + seed, seed=seed, config={"ablate": ablate, "distill.name": "combined"},
                      metrics=lm_metrics(loss + 0.01 * seed, loss, 0.3))
    document, text = ablation_report(collect(sweep))
    without = document["results"][1]
    assert without["delta_metric"] == pytest.approx(0.4) and without["delta_accuracy"] == pytest.approx(0.0)
    assert document["best"]["configuration"] == "Full model (combined)"
    assert "Δ Loss" in text and "Δ: test loss minus the full model's (lower is better)" in text


def test_selection_ties_with_a_lower_is_better_metric():
    rows = [{"name": "a", "val": 2.0, "acc": 0.3}, {"name": "b", "val": 2.0, "acc": 0.4},
            {"name": "c", "val": 1.9, "acc": 0.1}, {"name": "d", "val": None, "acc": 0.9}]
    ranked = selection.rank(rows, lambda r: r["val"], lambda r: r["acc"], LOSS)
    assert [r["name"] for r in ranked] == ["c", "b", "a", "d"]
