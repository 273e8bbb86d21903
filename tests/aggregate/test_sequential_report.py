"""Reading an auto sweep's runs back: each group's values by seed, and the report's words for each stop."""

from __future__ import annotations

import math

from entrenar_bench.aggregate.collect import collect
from entrenar_bench.aggregate.sequential import run_procedure
from entrenar_bench.aggregate.sequential_design import Design
from entrenar_bench.aggregate.sequential_report import baseline_of, samples, section, section_lines, swept_value
from tests.runs_on_disk import lm_metrics, write_run


def test_the_swept_value_is_read_from_the_recorded_overrides():
    line = "+bench=temperature seed=2 distill.temperature=2.0 +experiment=lm"
    assert swept_value(line, "distill.temperature") == "2.0"
    assert swept_value(line, "distill") is None  # distill.temperature is not distill
    assert swept_value("seed=0 distill=kd", "distill") == "kd" and swept_value(None, "distill") is None


def test_a_planned_number_matches_the_value_hydra_records(tmp_path):
    """The plan says distill.alpha=0.50; the job records distill.alpha=0.5."""
    for job, (value, loss) in enumerate([("0.0", 2.0), ("0.5", 1.8), ("0.25", 1.9)]):
        write_run(tmp_path, job, seed=0, metrics=lm_metrics(loss, loss, 0.5), config={"distill.alpha": float(value)},
                  overrides=["seed=0", f"distill.alpha={value}"])
    assert samples(collect(tmp_path), "distill.alpha", ["0.00", "0.25", "0.50"]) == \
        {"0.00": [2.0], "0.25": [1.9], "0.50": [1.8]}


def test_baselines_none_first_or_none_for_racing():
    assert baseline_of("compare", ["kd", "none"]) == "none"
    assert baseline_of("compare", ["kd", "mse"]) == "kd"
    assert baseline_of("ablation", ["full", "temperature"]) == "full"
    assert baseline_of("temperature", ["1.0", "2.0"]) is None


def test_samples_are_by_seed_with_a_gap_where_a_run_is_missing(tmp_path):
    for job, (value, seed, loss) in enumerate([("none", 0, 2.0), ("none", 2, 2.2), ("kd", 0, 1.5), ("kd", 1, 1.6)]):
        write_run(tmp_path, job, seed=seed, metrics=lm_metrics(loss, loss, 0.5), config={"distill.name": value},
                  overrides=[f"seed={seed}", f"distill={value}"])
    found = samples(collect(tmp_path), "distill", ["none", "kd"])
    assert found["kd"][:2] == [1.5, 1.6] and math.isnan(found["kd"][2])
    assert found["none"][0] == 2.0 and math.isnan(found["none"][1]) and found["none"][2] == 2.2
    assert samples(collect(tmp_path), "distill", ["none", "kd"], below=1) == {"none": [2.0], "kd": [1.5]}


def test_the_report_says_where_each_comparison_stopped_and_the_runs_saved():
    values = {"none": [2.0, 2.01, 1.99, 2.0, 2.02, 1.98], "kd": [1.5, 1.51, 1.49, 1.5, 1.52, 1.48],
              "mse": [2.0, 2.02, 1.98, 2.01, 1.99, 2.0]}
    design = Design(max_runs=6, min_runs=3, mde=0.1).check()
    document = section(run_procedure(design, values, "none", True), "compare", lower_is_better=True)
    by_group = {c["group"]: c for c in document["comparisons"]}
    assert by_group["kd"]["status"] == "efficacy" and by_group["kd"]["boundary"]["look"] == by_group["kd"]["look"]
    assert by_group["mse"]["status"] == "futility" and by_group["mse"]["boundary"] is None
    assert document["runs_fixed_design"] == 18 and document["runs_saved"] == 18 - document["runs_used"] > 0
    text = "\n".join(section_lines(document))
    assert "kd: stopped at look 1 (3 runs): better than none; efficacy boundary crossed" in text
    assert "mse: stopped at look 1 (3 runs): futility" in text and "saved" in text


def test_a_comparison_left_at_the_maximum_is_undecided():
    values = {"none": [2.0, 2.1, 1.9, 2.05], "kd": [1.95, 2.08, 1.92, 2.0]}
    document = section(run_procedure(Design(max_runs=4, min_runs=3).check(), values, "none", True), "compare", True)
    (kd,) = document["comparisons"]
    assert kd["status"] == "max_runs" and kd["verdict"].startswith("max runs reached, undecided")
    assert document["stopped"] == "max runs reached" and document["runs_saved"] == 0


def test_racing_lists_each_dropped_point_with_its_look_and_adjusted_p():
    values = {"1.0": [2.0, 2.01, 1.99, 2.0, 2.02, 1.98], "2.0": [1.5, 1.51, 1.49, 1.5, 1.52, 1.48],
              "3.0": [1.5, 1.52, 1.48, 1.51, 1.49, 1.5]}
    design = Design(max_runs=6, min_runs=3).check()
    document = section(run_procedure(design, values, None, True), "temperature", lower_is_better=True)
    assert document["mode"] == "racing against the best" and document["holm"] == {"hypotheses": 3, "share": 1.0}
    (dropped,) = document["dropped"]
    assert dropped["group"] == "1.0" and dropped["look"] < 4 and dropped["runs"] < 6 and dropped["p_adjusted"] <= 0.05
    text = "\n".join(section_lines(document))
    assert f"1.0: dropped at look {dropped['look']} ({dropped['runs']} runs): worse than the best (" in text
    assert f"dropped: 1.0 at look {dropped['look']} ({dropped['runs']} runs, adjusted p " in text
    assert "Holm across the 3 points" in text


def test_racing_that_drops_nothing_says_so():
    values = {"1.0": [2.0, 2.1, 1.9], "2.0": [1.95, 2.08, 1.92]}
    document = section(run_procedure(Design(max_runs=3, min_runs=3).check(), values, None, True), "alpha", True)
    assert document["dropped"] == []
    assert "  dropped: none (no point was significantly worse than the best at any look)" in section_lines(document)
