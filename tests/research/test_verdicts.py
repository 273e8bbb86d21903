"""Verdicts on synthetic sweeps: direction, margins, TOST, best setting, Holm, groups, deviations, bundle/verify."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from scipy import stats as scipy_stats

from entrenar_bench.aggregate import stats
from entrenar_bench.research.bundle import bundle, write_manifest
from entrenar_bench.research.check import claim_line, evaluate
from entrenar_bench.research.link import link_sweep
from entrenar_bench.research.verify import verify
from research_support import RECORD, artifact, entrenar, later, runs, write_sweep  # noqa: F401  (artifact)


@pytest.fixture
def sweep_dir(tmp_path):
    """kd clearly beats none on accuracy and on loss (5 runs each, T = 4)."""
    return write_sweep(tmp_path / "sweep", {
        ("none", 4.0): runs("accuracy", [0.90, 0.91, 0.905, 0.895, 0.90], loss=[0.40, 0.41, 0.39, 0.42, 0.40]),
        ("kd", 4.0): runs("accuracy", [0.95, 0.955, 0.96, 0.945, 0.95], loss=[0.20, 0.22, 0.21, 0.19, 0.20]),
    })


def register(path: Path, *claims: str, options: tuple[str, ...] = ()) -> None:
    argv = [a for c in claims for a in ("--claim", c)]
    assert entrenar("research", "preregister", str(path), "--hypothesis", "h", "--methods", "m", *argv, *options) == 0


def link(path: Path, folder: Path, started: datetime | None = None) -> None:
    link_sweep(path, folder, started or later(), ["entrenar-bench", "compare"])


def check(path: Path, **options) -> dict:
    """``research check`` as its JSON, claim by id."""
    artifact = yaml.safe_load(path.read_text())
    sweeps = []
    for entry in artifact["sweeps"]:
        sweeps.append((entry["dir"], Path(entry["dir"]), [entry]))
    report = evaluate(artifact, sweeps, **options)
    return {c["id"]: c for c in report["claims"]}


def test_superiority_supported_and_the_reverse_contradicted_with_holm(artifact, sweep_dir):
    register(artifact, "kd > none", "none > kd", "kd > none on loss")
    link(artifact, sweep_dir)
    claims = check(artifact)
    assert [claims[i]["verdict"] for i in ("H1", "H2", "H3")] == ["supported", "contradicted", "supported"]
    kd, none = [0.95, 0.955, 0.96, 0.945, 0.95], [0.90, 0.91, 0.905, 0.895, 0.90]
    welch = scipy_stats.ttest_ind(kd, none, equal_var=False)
    assert claims["H1"]["p_value"] == pytest.approx(welch.pvalue)
    assert claims["H1"]["difference"] == pytest.approx(0.05) and claims["H2"]["difference"] == pytest.approx(-0.05)
    assert claims["H1"]["hedges_g"] == pytest.approx(stats.hedges_g(kd, none))
    raw = [claims[i]["p_value"] for i in ("H1", "H2", "H3")]
    assert [claims[i]["p_adjusted"] for i in ("H1", "H2", "H3")] == pytest.approx(
        [1.0 if i == 1 else p for i, p in enumerate(stats.holm([raw[0], 1.0, raw[2]]))])
    assert claims["H3"]["lower_is_better"] and claims["H3"]["difference"] < 0  # kd's loss is lower: kd is better
    assert all(c["status"] == "confirmatory" and not c["deviations"] for c in claims.values())


def test_a_margin_is_in_the_metric_units(artifact, sweep_dir):
    register(artifact, "kd > none by 0.03", "kd > none by 0.5", "none >= kd within 0.1", "none >= kd within 0.01")
    link(artifact, sweep_dir)
    claims = check(artifact)
    assert [claims[f"H{i}"]["verdict"] for i in range(1, 5)] == ["supported", "contradicted", "supported",
                                                                 "contradicted"]
    kd, none = [0.95, 0.955, 0.96, 0.945, 0.95], [0.90, 0.91, 0.905, 0.895, 0.90]
    shifted = scipy_stats.ttest_ind([x - 0.03 for x in kd], none, equal_var=False)
    assert claims["H1"]["p_value"] == pytest.approx(shifted.pvalue)


def test_the_task_primary_metric_and_its_direction_come_from_the_record(artifact, tmp_path):
    folder = write_sweep(tmp_path / "sweep", {
        ("none", 4.0): runs("score", [3.0, 3.1, 2.9, 3.05]), ("kd", 4.0): runs("score", [2.0, 2.1, 1.9, 2.05])})
    for path in folder.glob("*/result.json"):
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "primary_metric": {"name": "score", "lower_is_better": True}}))
    register(artifact, "kd > none")
    link(artifact, folder)
    (claim,) = check(artifact).values()
    assert (claim["metric"], claim["lower_is_better"], claim["verdict"]) == ("score", True, "supported")


def test_equivalence_with_a_tiny_margin_and_two_runs_is_not_supported_with_the_mde(artifact, tmp_path):
    folder = write_sweep(tmp_path / "sweep", {("kd", 1.0): runs("accuracy", [0.93, 0.95]),
                                              ("kd", 2.0): runs("accuracy", [0.94, 0.945])})
    register(artifact, "T=1 ~ T=2 within 0.001", options=("--runs", "5"))
    link(artifact, folder)
    (claim,) = check(artifact).values()
    assert claim["verdict"] == "not supported" and claim["groups"] == ["1", "2"]
    assert claim["mde_80"] is None  # says nothing about showing equivalence: the TOST bounds and the CI instead
    assert claim["tost_bounds"] == [-0.001, 0.001]
    low, high = claim["ci_tost"]
    assert low < claim["difference"] < high and high - low > 0.002
    assert "TOST bounds [-0.001, +0.001]; observed [" in claim_line(claim)
    assert claim["deviations"] == ["fewer runs than planned (1: 2 of 5, 2: 2 of 5)"]


def test_equivalence_within_a_wide_margin_is_supported_by_tost(artifact, tmp_path):
    values = [0.90, 0.91, 0.905, 0.895, 0.90, 0.902]
    folder = write_sweep(tmp_path / "sweep", {("kd", 1.0): runs("accuracy", values),
                                              ("kd", 2.0): runs("accuracy", [v + 0.001 for v in values])})
    register(artifact, "temperature=1 ~ distill.temperature=2 within 0.02", "T=1 ~ T=2 within 0.0005")
    link(artifact, folder)
    claims = check(artifact)
    assert claims["H1"]["verdict"] == "supported" and claims["H1"]["p_adjusted"] < 0.05
    assert claims["H2"]["verdict"] == "not supported"  # −0.001 lies outside ±0.0005, but not significantly


@pytest.fixture
def temperature_sweep(tmp_path):
    """T = 4 best on validation and on test; T = 1 and 2 clearly below it."""
    base = [0.0, 0.004, -0.003, 0.002, -0.001]
    def point(test, val):
        return runs("accuracy", [test + b for b in base], val_accuracy=[val + b for b in base])
    return write_sweep(tmp_path / "sweep", {("kd", 1.0): point(0.90, 0.89), ("kd", 2.0): point(0.92, 0.91),
                                            ("kd", 4.0): point(0.95, 0.94)})


def test_best_setting_beats_each_other_setting_and_is_the_selection_rules_pick(artifact, temperature_sweep):
    register(artifact, "best temperature is 4", "best T is 2", "best temperature is 4 within 0.01")
    link(artifact, temperature_sweep)
    claims = check(artifact)
    best, wrong, within = claims["H1"], claims["H2"], claims["H3"]
    assert best["verdict"] == "supported" and best["selected"] == "4" and best["selected_by"] == "val_accuracy"
    assert best["b"] == "2" and len(best["comparisons"]) == 2  # the closest competitor stands for the claim
    assert best["p_value"] == max(c["p_value"] for c in best["comparisons"])
    assert wrong["verdict"] == "contradicted" and wrong["selected"] == "4"
    assert within["verdict"] == "supported"


def test_best_setting_is_not_supported_when_the_selection_rule_picks_another(artifact, tmp_path):
    base = [0.0, 0.004, -0.003, 0.002, -0.001]
    folder = write_sweep(tmp_path / "sweep", {
        ("kd", 2.0): runs("accuracy", [0.90 + b for b in base], val_accuracy=[0.96 + b for b in base]),
        ("kd", 4.0): runs("accuracy", [0.95 + b for b in base], val_accuracy=[0.90 + b for b in base])})
    register(artifact, "best temperature is 4")
    link(artifact, folder)
    (claim,) = check(artifact).values()
    assert claim["selected"] == "2" and claim["verdict"] == "not supported" and claim["side"] == "other"


def test_lower_is_better_best_setting_selects_on_the_validation_twin(artifact, tmp_path):
    base = [0.0, 0.01, -0.01, 0.005]
    folder = write_sweep(tmp_path / "sweep", {
        ("kd", 1.0): runs("perplexity", [6.0 + b for b in base], val_perplexity=[6.1 + b for b in base]),
        ("kd", 4.0): runs("perplexity", [5.0 + b for b in base], val_perplexity=[5.1 + b for b in base])})
    register(artifact, "best temperature is 4 on perplexity")
    link(artifact, folder)
    (claim,) = check(artifact).values()
    assert (claim["selected_by"], claim["selected"], claim["verdict"]) == ("val_perplexity", "4", "supported")


def test_groups_are_named_by_label_or_settings_and_ambiguity_is_not_testable(artifact, tmp_path):
    folder = write_sweep(tmp_path / "sweep", {
        ("none", 4.0): runs("accuracy", [0.90, 0.91, 0.905]), ("kd", 4.0): runs("accuracy", [0.95, 0.955, 0.96]),
        ("kd", 2.0): runs("accuracy", [0.93, 0.935, 0.94])})
    register(artifact, "kd T=4 > none", "distill.name=kd,distill.temperature=2 > none", "T=4 > T=2", "mse > none")
    link(artifact, folder)
    claims = check(artifact)
    assert claims["H1"]["groups"] == ["distill.name=kd,distill.temperature=4",
                                      "distill.name=none,distill.temperature=4"]
    assert claims["H2"]["groups"][0] == "distill.name=kd,distill.temperature=2"
    assert claims["H3"]["verdict"] == "not testable" and "matches 2 groups" in claims["H3"]["not_testable"]
    assert claims["H4"]["verdict"] == "not testable" and "no group of sweep" in claims["H4"]["not_testable"]
    assert claims["H4"]["p_adjusted"] == 1.0  # counted in the Holm family as registered


def test_a_paired_plan_pairs_on_seeds(artifact, tmp_path):
    kd, none = [0.95, 0.93, 0.97, 0.94], [0.94, 0.925, 0.96, 0.93]
    folder = write_sweep(tmp_path / "sweep", {("none", 4.0): runs("accuracy", none), ("kd", 4.0): runs("accuracy", kd)})
    register(artifact, "kd > none", options=("--test", "paired"))
    link(artifact, folder)
    (claim,) = check(artifact).values()
    assert claim["test"] == "paired" and claim["p_value"] == pytest.approx(scipy_stats.ttest_rel(kd, none).pvalue)
    (welch,) = check(artifact, test="welch").values()
    assert welch["p_value"] == pytest.approx(scipy_stats.ttest_ind(kd, none, equal_var=False).pvalue)
    assert welch["status"] == "exploratory"
    assert welch["exploratory"] == ["checked with the welch test, registered paired"]


def test_a_claim_registered_after_the_first_run_is_exploratory(artifact, tmp_path):
    started = datetime.now(timezone.utc) - timedelta(minutes=5)
    folder = write_sweep(tmp_path / "sweep", {("none", 4.0): runs("accuracy", [0.90, 0.91, 0.905]),
                                              ("kd", 4.0): runs("accuracy", [0.95, 0.955, 0.96])}, started)
    register(artifact, "kd > none")
    link(artifact, folder, started)
    (claim,) = check(artifact).values()
    assert claim["verdict"] == "supported" and claim["status"] == "exploratory"
    assert claim["exploratory"][0].startswith(f"registered {claim['registered']}, after the sweep's first run")


def test_editing_a_claim_or_the_plan_after_the_runs_makes_it_exploratory(artifact, sweep_dir, tmp_path):
    register(artifact, "kd > none", "none > kd on loss")
    started = datetime.now(timezone.utc)
    folder = write_sweep(tmp_path / "late", {("none", 4.0): runs("accuracy", [0.90, 0.91, 0.905]),
                                             ("kd", 4.0): runs("accuracy", [0.95, 0.955, 0.96])}, started)
    link(artifact, folder, started)
    assert check(artifact)["H1"]["status"] == "confirmatory"
    register(artifact, "H1: kd > none by 0.01")
    claims = check(artifact)
    assert claims["H1"]["status"] == "exploratory" and "edited in amendment 1" in claims["H1"]["exploratory"][0]
    assert claims["H2"]["status"] == "confirmatory"
    register(artifact, options=("--alpha", "0.01"))
    assert "analysis plan changed in amendment 2" in check(artifact)["H2"]["exploratory"][0]


def test_another_metric_than_registered_and_a_changed_config_tree_are_flagged(artifact, sweep_dir):
    register(artifact, "kd > none")
    link(artifact, sweep_dir)
    data = yaml.safe_load(artifact.read_text())
    data["sweeps"][0]["flags"] = [{"flag": "config_changed", "detail": "config digest differs: ~distill/kd.yaml"}]
    artifact.write_text(yaml.safe_dump(data))
    (claim,) = check(artifact, metric="loss").values()
    assert claim["metric"] == "loss" and claim["exploratory"] == ["checked on loss, registered on accuracy"]
    assert claim["deviations"] == ["config tree changed (config digest differs: ~distill/kd.yaml)"]


def test_a_failed_run_counts_as_fewer_than_planned(artifact, sweep_dir):
    path = sweep_dir / "0" / "result.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "status": "failed", "error": "diverged"}))
    register(artifact, "kd > none", options=("--runs", "5"))
    link(artifact, sweep_dir)
    (claim,) = check(artifact).values()
    assert claim["deviations"] == ["fewer runs than planned (none: 4 of 5)"] and claim["n"] == {"a": 5, "b": 4}


def test_the_command_prints_one_line_per_claim_and_json(artifact, sweep_dir, capsys):
    register(artifact, "kd > none", "none > kd", "kd > none by 0.05", "kd ~ none within 0.0001")
    link(artifact, sweep_dir)
    capsys.readouterr()
    assert entrenar("research", "check", str(artifact)) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and lines[0].startswith("Claims: 4 registered, Holm-adjusted")
    assert lines[1].startswith("H1 kd > none: SUPPORTED (confirmatory): kd − none = +0.0500 (95% CI")
    assert "Hedges' g" in lines[1] and "(Holm), Welch's t-test" in lines[1]
    assert lines[2].startswith("H2 none > kd: CONTRADICTED (confirmatory)")
    assert lines[3].startswith("H3 kd > none by 0.05: NOT SUPPORTED") and "minimum detectable effect" in lines[3]
    assert "at Holm's level 0.0125" in lines[3]  # alpha / 4 claims
    assert lines[4].startswith("H4 kd ~ none within 0.0001: CONTRADICTED") and "Welch's t-test" in lines[4]
    assert entrenar("research", "check", str(artifact), "--format", "json") == 0
    document = json.loads(capsys.readouterr().out)
    assert [c["verdict"] for c in document["claims"]] == ["supported", "contradicted", "not supported",
                                                          "contradicted"]
    assert document["plan"]["correction"] == "holm" and document["family"] == 4


def test_check_refuses_an_artifact_without_claims_or_sweeps(artifact, capsys):
    register(artifact)
    capsys.readouterr()
    assert entrenar("research", "check", str(artifact)) == 2
    assert "no registered claims to check" in capsys.readouterr().err
    register(artifact, "kd > none")
    assert entrenar("research", "check", str(artifact)) == 2
    assert "no linked sweeps" in capsys.readouterr().err
    assert entrenar("research", "check", str(artifact), "--metric", "a b") == 2


def test_bundle_and_verify_reproduce_the_verdicts_from_the_bundle_alone(artifact, sweep_dir, tmp_path, capsys):
    register(artifact, "kd > none", "none > kd on loss")
    link(artifact, sweep_dir)
    target, document = bundle(artifact, tmp_path / "out")
    assert [c["verdict"] for c in document["verdicts"]["claims"]] == ["supported", "contradicted"]
    recorded = json.loads((target / "bundle.json").read_text())["verdicts"]
    sweep_dir.rename(tmp_path / "gone")  # the bundle alone
    report = verify(target)
    assert report["ok"], report["problems"]
    assert report["verdicts"]["claims"] == recorded["claims"]
    assert entrenar("research", "verify", str(target)) == 0
    out = capsys.readouterr().out
    assert "claim H1 kd > none: SUPPORTED" in out and "claim H2 none > kd on loss: CONTRADICTED" in out

    result = next(target.glob("sweeps/*/5/result.json"))  # a kd run, changed and the manifest rewritten
    record = json.loads(result.read_text())
    record["metrics"].update(accuracy=0.5, loss=0.9)
    result.write_text(json.dumps({**RECORD, **record}))
    write_manifest(target)
    report = verify(target)
    assert not report["ok"]
    assert any(p.startswith("verdicts recomputed from the bundle differ from bundle.json: H1 verdict: "
                            "'supported' recorded, 'not supported' recomputed") for p in report["problems"])


def test_configuration_labels_with_spaces_name_groups(artifact, tmp_path):
    """A cost-performance sweep is labelled by its ``configuration`` (``LoRA r=16``), spaces and all."""
    folder = write_sweep(tmp_path / "sweep", {
        ("kd", 2.0): runs("accuracy", [0.90, 0.91, 0.905, 0.902], val_accuracy=[0.90, 0.91, 0.905, 0.902]),
        ("kd", 1.0): runs("accuracy", [0.95, 0.955, 0.96, 0.952], val_accuracy=[0.95, 0.955, 0.96, 0.952])})
    for path in folder.glob("*/result.json"):
        record = json.loads(path.read_text())
        name = "LoRA r=16" if record["config"]["distill"]["temperature"] == 1.0 else "Full fine-tune"
        record["config"]["configuration"] = name
        path.write_text(json.dumps(record))
    register(artifact, "LoRA r=16 > Full fine-tune", "best configuration is LoRA r=16")
    link(artifact, folder)
    claims = check(artifact)
    assert claims["H1"]["groups"] == ["LoRA r=16", "Full fine-tune"] and claims["H1"]["verdict"] == "supported"
    assert claims["H2"]["groups"] == ["LoRA r=16", "Full fine-tune"] and claims["H2"]["selected"] == "LoRA r=16"
    assert claims["H2"]["verdict"] == "supported"
