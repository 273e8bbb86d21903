"""What the reports conclude and how they say it: honest groups, selection on validation, the teacher as a
factor, statistics in the text, zero variance stated, pictures and learning curves (run records by hand)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from entrenar_bench.aggregate import plots, selection
from entrenar_bench.aggregate.bench_reports import ablation_report, compare_report, param_sweep_report
from entrenar_bench.sweep.commands import sweep_command
from entrenar_bench.aggregate.collect import collect
from entrenar_bench.aggregate.curves import METRICS_FILE, band, read_curves
from entrenar_bench.aggregate.metrics import LOSS
from entrenar_bench.aggregate.report import generic_report
from entrenar_bench.aggregate.teacher import RECORD


def write(sweep: Path, job: int, *, seed: int, accuracy: float, val: float | None = None, val_loss: float = 0.1,
          teacher_seed: int | None = 0, uses_teacher: bool = True, **config) -> Path:
    """One completed run; ``config``: dotted keys (``distill__name="kd"`` is distill.name)."""
    tree = {"seed": seed, "teacher": {"seed": teacher_seed, "name": "cnn"}, "distill": {"name": "kd"}}
    for dotted, value in config.items():
        node = tree
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    teacher = None
    if uses_teacher:
        cache = sweep.parent / "cache" / f"teacher{teacher_seed}"
        cache.mkdir(parents=True, exist_ok=True)
        (cache / RECORD).write_text(json.dumps({"metrics": {"accuracy": 0.99 + 0.001 * teacher_seed, "loss": 0.02},
                                                "time_s": 10.0}))
        teacher = {"cache": str(cache), "params": 1}
    job_dir = sweep / str(job)
    job_dir.mkdir(parents=True)
    record = {"status": "completed", "seed": seed, "time_s": 1.0, "peak_memory_gb": 0.01, "device": "cpu: test",
              "metrics": {"accuracy": accuracy, "loss": 1 - accuracy,
                          "val_accuracy": accuracy if val is None else val, "val_loss": val_loss},
              "config": tree, "teacher": teacher, "overrides": []}
    (job_dir / "result.json").write_text(json.dumps(record))
    return job_dir


def test_precision_forms_groups_and_placement_does_not(tmp_path):
    sweep = tmp_path / "sweep"
    for job, (precision, threads, seed) in enumerate(
            [(p, t, s) for p in ("32-true", "bf16-mixed") for t, s in ((1, 0), (2, 1))]):
        write(sweep, job, seed=seed, accuracy=0.9 + job / 100, trainer__precision=precision, threads=threads,
              launcher__name="basic" if seed else "joblib")
    c = collect(sweep)
    assert c.group_keys == ["trainer.precision"]
    assert sorted(c.runs["group"].unique()) == ["32-true", "bf16-mixed"]


def test_best_is_chosen_on_validation_and_reported_on_test(tmp_path):
    sweep = tmp_path / "sweep"
    # T=1 has the higher test accuracy, T=2 the higher validation accuracy: T=2 is the best
    for seed in range(3):
        write(sweep, seed, seed=seed, accuracy=0.95 + seed / 1000, val=0.90, distill__temperature=1.0)
        write(sweep, 10 + seed, seed=seed, accuracy=0.93 + seed / 1000, val=0.92, distill__temperature=2.0)
    document, text = param_sweep_report(collect(sweep), sweep_command("temperature"))
    assert document["best_temperature"] == 2.0
    assert document["best"]["selected_by"] == "val_accuracy" and document["best"]["accuracy"] == pytest.approx(0.931)
    assert all("val_accuracy" in row for row in document["results"])
    assert "Best temperature: 2.0 (accuracy: 0.931" in text and "chosen on validation accuracy 0.920" in text
    generic, generic_text = generic_report(collect(sweep))
    assert generic["best"]["group"] == "2" and "Best: 2 " in generic_text  # aggregate names the same best


def test_ties_go_to_the_lower_validation_loss_then_the_table_order():
    rows = [{"name": "a", "val": 0.98, "loss": 0.2}, {"name": "b", "val": 0.98, "loss": 0.1},
            {"name": "c", "val": 0.98, "loss": 0.1}, {"name": "d", "val": None, "loss": 0.0}]
    ranked = selection.rank(rows, lambda r: r["val"], lambda r: r["loss"])
    assert [r["name"] for r in ranked] == ["b", "c", "a", "d"]


def test_teacher_is_a_random_factor_and_unused_teachers_do_not_multiply_runs(tmp_path):
    sweep = tmp_path / "sweep"
    kd = {(t, s): 0.97 + 0.004 * t + 0.001 * s for t in (0, 1) for s in range(3)}
    none = {s: 0.95 + 0.002 * s for s in range(3)}
    job = 0
    for (t, s), acc in kd.items():
        write(sweep, job, seed=s, accuracy=acc, teacher_seed=t)
        write(sweep, job + 1, seed=s, accuracy=none[s], teacher_seed=t, uses_teacher=False, distill__name="none")
        job += 2
    c = collect(sweep)
    assert c.group_keys == ["distill.name"]  # teacher.seed is a factor, not a configuration
    document, text = compare_report(c)
    by = {r["strategy"]: r for r in document["results"]}
    assert by["kd"]["n"] == 6 and by["kd"]["teachers"] == 2 and by["none"]["n"] == 3  # none's duplicates: one run each
    per_teacher = [np.mean([kd[t, s] for s in range(3)]) for t in (0, 1)]
    ref = sps.ttest_ind(per_teacher, list(none.values()), equal_var=False)
    pair = document["pairs"][0]
    assert pair["p_value"] == pytest.approx(ref.pvalue) and {pair["n_a"], pair["n_b"]} == {2, 3}
    assert "Conclusions rest on 2 teachers (teacher.seed 0, 1)" in text
    assert document["teacher"]["accuracy"]["mean"] == pytest.approx(0.9905)
    assert "teacher (reference) | " in text and "warning: kd rests on 2 teachers (fewer than 3)" in text


def test_text_names_the_test_and_carries_p_ci_and_effect_size(tmp_path):
    sweep = tmp_path / "sweep"
    for s in range(4):
        write(sweep, s, seed=s, accuracy=0.98 + 0.001 * s)
        write(sweep, 10 + s, seed=s, accuracy=0.96 + 0.002 * s, uses_teacher=False, distill__name="none")
    _, text = compare_report(collect(sweep))
    line = next(line for line in text.splitlines() if line.startswith("- kd > none: "))
    assert "95% CI" in line and "Hedges' g = " in line and "p < 0.001 (Holm)" in line
    _, paired = generic_report(collect(sweep), test="paired")
    assert "paired t-test" in paired and "Welch" not in paired


def test_paired_tests_pair_like_units_only(tmp_path):
    """Per-teacher means are never paired with per-seed values of a group that used no teacher."""
    sweep = tmp_path / "sweep"
    for t in (0, 1):
        for s in range(2):
            write(sweep, 10 * t + s, seed=s, accuracy=0.97 + 0.01 * t + 0.001 * s, teacher_seed=t)
            write(sweep, 100 + 10 * t + s, seed=s, accuracy=0.95, teacher_seed=t, uses_teacher=False,
                  distill__name="none")
    document, _ = generic_report(collect(sweep), test="paired")
    assert document["pairs"][0]["not_testable"] == "fewer than 2 samples on a side"


def test_zero_variance_is_a_stated_fact_not_a_warning(tmp_path):
    sweep = tmp_path / "sweep"
    for s in range(3):
        write(sweep, s, seed=s, accuracy=0.9833)
        write(sweep, 10 + s, seed=s, accuracy=0.9833, uses_teacher=False, distill__name="none")
        write(sweep, 20 + s, seed=s, accuracy=0.97 + 0.001 * s, distill__name="mse")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        document, text = compare_report(collect(sweep))
    assert "zero variance in group kd: all 3 runs scored 0.9833" in text
    pair = next(p for p in document["pairs"] if {p["a"], p["b"]} == {"kd", "none"})
    assert pair["p_value"] is None and pair["not_testable"] == "zero variance on both sides"


def test_param_sweeps_sort_by_the_parameter_and_warn_below_three_runs(tmp_path):
    sweep = tmp_path / "sweep"
    for job, (t, acc) in enumerate([(10.0, 0.99), (2.0, 0.95), (4.0, 0.97)]):
        for s in range(2):
            write(sweep, 10 * job + s, seed=s, accuracy=acc + s / 1000, distill__temperature=t)
    document, text = generic_report(collect(sweep))
    assert [g["group"] for g in document["groups"]] == ["2", "4", "10"]
    assert "warning: 2, 4, 10 rest on 2 runs each (fewer than 3)" in text and "n = 2 runs per group" in text
    sweep_doc, _ = param_sweep_report(collect(sweep), sweep_command("temperature"))
    assert [r["temperature"] for r in sweep_doc["results"]] == [2.0, 4.0, 10.0]


def test_ablation_rows_are_spelled_out(tmp_path):
    sweep = tmp_path / "sweep"
    for job, ablate in enumerate(["full", "temperature", "temperature+attention_loss"]):
        for s in range(2):
            write(sweep, 10 * job + s, seed=s, accuracy=0.98 - job / 100 + s / 1000, ablate=ablate,
                  distill__name="combined")
    document, text = ablation_report(collect(sweep))
    assert [r["configuration"] for r in document["results"]] == [
        "Full model (combined)", "without temperature scaling", "without temperature scaling and attention loss"]
    assert "reference" in text and " n/a" not in text and "| 1 |" not in text.replace(" ", "")


def test_plots_show_runs_clip_cis_and_draw_curves(tmp_path):
    entry = {"metric": {"mean": 0.99, "ci95": [0.95, 1.03]}, "metric_values": [0.98, 0.99, 1.0]}
    assert plots.clipped_ci(entry) == (0.95, 1.0)
    assert plots.clipped_ci({"metric": {"mean": 2.0, "ci95": [0.5, 3.5]}}, LOSS) == (0.5, 3.5)  # a loss: not clipped
    sweep = tmp_path / "sweep"
    for s in range(2):
        job_dir = write(sweep, s, seed=s, accuracy=0.9)
        rows = ["epoch,step,train/loss,val/accuracy"] + [f"{e},{e},{1 - e / 10},{0.5 + e / 20 if e % 2 else ''}"
                                                          for e in range(5)]
        (job_dir / METRICS_FILE).write_text("\n".join(rows) + "\n")
    c = collect(sweep)
    curves = read_curves(c)
    assert list(curves) == ["kd"] and len(curves["kd"]) == 10  # one strategy, nothing varies: labelled by its name
    b = band(curves["kd"], "train/loss")
    assert list(b["epoch"]) == [1, 2, 3, 4, 5] and list(b["n"]) == [2] * 5
    document, _ = compare_report(c)
    assert Path(document["plot"]).is_file() and Path(document["curves"]).name == "curves.png"


def test_the_teacher_row_shows_its_measuring_time_and_the_metrics_runs_measured_of_it(tmp_path):
    sweep = tmp_path / "sweep"
    for job, name in enumerate(["kd", "kd", "none", "none"]):
        job_dir = write(sweep, job, seed=job % 2, accuracy=0.5 + job / 100, distill__name=name)
        record = json.loads((job_dir / "result.json").read_text())
        record["metrics"].update(rouge_l=0.2 + job / 100, val_rouge_l=0.3)
        record["teacher"]["sample_metrics"] = {"rouge_l": 0.41, "val_rouge_l": 0.4}  # greedy: the same every run
        (job_dir / "result.json").write_text(json.dumps(record))
    cache = tmp_path / "cache" / "teacher0" / RECORD  # a teacher used as it is: no training, 31 s measuring it
    cache.write_text(json.dumps({"metrics": {"accuracy": 0.3, "loss": 4.6}, "time_s": 0.0, "measured_s": 31.0}))
    document, text = compare_report(collect(sweep, metric="rouge_l"))
    header, row = (next(line for line in text.splitlines() if line.startswith(start) and "|" in line)
                   for start in ("Strategy ", "teacher (reference)"))
    cells = dict(zip([h.strip() for h in header.split("|")], [c.strip() for c in row.split("|")]))
    assert (cells["ROUGE-L"], cells["Val ROUGE-L"], cells["Time (s)"]) == ("0.410", "0.400", "31.0"), text
    assert document["teacher"]["metric"]["mean"] == pytest.approx(0.41)


def test_teacher_record_name_matches_the_model_cache():
    from entrenar_bench.run.model_cache import TEACHER

    assert RECORD == f"{TEACHER.stem}.json"


def test_pareto_plot_draws_points_front_and_winner(tmp_path):
    points = [{"name": name, "cost": cost, "values": [acc - 0.01, acc + 0.01], "pareto": front,
               "metric": {"mean": acc, "ci95": [acc - 0.05, min(1.2, acc + 0.05)]}}
              for name, cost, acc, front in (("LoRA r=8", 1.0, 0.95, True), ("Full", 5.0, 0.97, True),
                                             ("LoRA r=64", 6.0, 0.96, False))]
    path = plots.pareto_plot(tmp_path / "pareto.png", points, "LoRA r=8", "Cost-Performance")
    assert path.is_file() and path.stat().st_size > 10_000
