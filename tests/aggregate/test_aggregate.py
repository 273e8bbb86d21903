"""Aggregation over run directories written by hand (the run-record contract), checked against
scipy and statsmodels computed independently here."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from entrenar_bench.aggregate import stats
from entrenar_bench.aggregate.bench_reports import compare_report
from entrenar_bench.aggregate.collect import SweepError, collect
from entrenar_bench.aggregate.report import generic_report, significance_lines
from entrenar_bench.sweep.plan import decimal_range
from entrenar_bench.errors import UsageError

GROUPS = {
    "kd": [0.981, 0.987, 0.979, 0.990, 0.984],
    "mse": [0.975, 0.978, 0.981, 0.972, 0.977],
    "none": [0.962, 0.970, 0.958, 0.966, 0.961],
}


def write_run(job_dir: Path, strategy: str, seed: int, accuracy: float, status: str = "completed") -> None:
    job_dir.mkdir(parents=True)
    (job_dir / ".hydra").mkdir()
    (job_dir / ".hydra" / "overrides.yaml").write_text(f"- distill={strategy}\n- seed={seed}\n")
    record = {"status": status, "seed": seed, "metrics": {"accuracy": accuracy, "loss": 1 - accuracy},
              "time_s": 2.0 + seed, "peak_memory_gb": 0.01, "device": "cpu: test",
              "config": {"seed": seed, "distill": {"name": strategy, "temperature": 4.0}, "paths": {"x": str(job_dir)}},
              "overrides": [f"distill={strategy}", f"seed={seed}"]}
    if status == "failed":
        record["error"] = "NonFiniteLoss: training loss became nan"
    (job_dir / "result.json").write_text(json.dumps(record))


@pytest.fixture
def sweep(tmp_path) -> Path:
    job = 0
    for strategy, values in GROUPS.items():
        for seed, acc in enumerate(values):
            write_run(tmp_path / str(job), strategy, seed, acc)
            job += 1
    return tmp_path


def test_groups_by_config_minus_seed_and_bookkeeping(sweep):
    c = collect(sweep)
    assert c.group_keys == ["distill.name"]
    assert sorted(c.runs["group"].unique()) == ["kd", "mse", "none"]


def test_a_sweep_of_one_strategy_is_labelled_by_its_name(tmp_path):
    for seed in range(2):
        write_run(tmp_path / str(seed), "kd", seed, 0.9 + seed / 100)
    c = collect(tmp_path)
    assert c.group_keys == [] and set(c.runs["group"]) == {"kd"}
    document, text = compare_report(c)
    assert document["strategies"] == ["kd"] and "Best strategy: kd " in text


def test_welch_holm_and_effect_sizes_match_scipy_and_statsmodels(sweep):
    document, text = generic_report(collect(sweep))
    pairs = {(p["a"], p["b"]): p for p in document["pairs"]}
    raw = []
    for (a, b), p in pairs.items():
        x, y = np.array(GROUPS[a]), np.array(GROUPS[b])
        ref = sps.ttest_ind(x, y, equal_var=False)
        va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
        df = (va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1))  # Welch–Satterthwaite by hand
        assert p["t"] == pytest.approx(ref.statistic) and p["p_value"] == pytest.approx(ref.pvalue)
        assert p["df"] == pytest.approx(df)
        half = sps.t.ppf(0.975, df) * math.sqrt(va + vb)
        assert p["ci95"] == pytest.approx([x.mean() - y.mean() - half, x.mean() - y.mean() + half])
        pooled = math.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (len(x) + len(y) - 2))
        j = 1 - 3 / (4 * (len(x) + len(y)) - 9)
        assert p["hedges_g"] == pytest.approx((x.mean() - y.mean()) / pooled * j)
        raw.append(ref.pvalue)
    adjusted = multipletests(raw, method="holm")[1]
    assert [p["p_adjusted"] for p in pairs.values()] == pytest.approx(list(adjusted))
    assert document["anova"]["p_value"] == pytest.approx(sps.f_oneway(*GROUPS.values()).pvalue)
    kd = next(g for g in document["groups"] if g["group"] == "kd")
    assert kd["accuracy"]["std"] == pytest.approx(np.std(GROUPS["kd"], ddof=1))
    half = sps.t.ppf(0.975, 4) * np.std(GROUPS["kd"], ddof=1) / math.sqrt(5)
    assert kd["accuracy"]["ci95"] == pytest.approx([np.mean(GROUPS["kd"]) - half, np.mean(GROUPS["kd"]) + half])
    assert "- kd > none" in text


def test_paired_test_uses_shared_seeds(sweep):
    document, _ = generic_report(collect(sweep), test="paired")
    p = next(p for p in document["pairs"] if {p["a"], p["b"]} == {"kd", "none"})
    ref = sps.ttest_rel(GROUPS[p["a"]], GROUPS[p["b"]])
    assert p["t"] == pytest.approx(ref.statistic) and p["df"] == 4


def test_failed_missing_and_corrupt_runs_are_listed_not_dropped(sweep):
    write_run(sweep / "20", "kd", 9, 0.5, status="failed")
    (sweep / "21" / ".hydra").mkdir(parents=True)
    (sweep / "21" / ".hydra" / "overrides.yaml").write_text("- distill=kd\n- seed=10\n")
    (sweep / "22").mkdir()
    (sweep / "22" / "result.json").write_text("{not json")
    c = collect(sweep)
    document, text = generic_report(c)
    statuses = sorted(f["status"] for f in document["failures"])
    assert statuses == ["failed", "missing", "missing"]
    damaged = [f for f in document["failures"] if "damaged" in (f["error"] or "")]
    assert len(damaged) == 1 and "22/result.json damaged: not valid JSON" in damaged[0]["error"]
    assert not document["problems"]  # listed once, as a run, not again as a problem
    assert next(g for g in document["groups"] if g["group"] == "kd")["n"] == 5  # failed run not averaged
    assert "Runs not completed: 3" in text and "NonFiniteLoss" in text


def test_expected_but_never_started_jobs_are_missing(sweep):
    (sweep / "multirun.yaml").write_text(
        "hydra:\n  sweeper:\n    params: {}\n  overrides:\n    task:\n    - distill=kd,mse,none,attention\n"
        "    - seed=0,1,2,3,4\n")
    document, _ = generic_report(collect(sweep))
    never = [f for f in document["failures"] if f["error"] == "never started"]
    assert len(never) == 5 and all("distill=attention" in f["overrides"] for f in never)


def _pair(a, b, diff, p_adjusted, g=1.5):
    return {"a": a, "b": b, "mean_diff": diff, "ci95": [diff - 0.005, diff + 0.005], "hedges_g": g,
            "p_adjusted": p_adjusted}


def test_significance_lines_ordered_by_mean_holm_only_with_ci_and_effect_size():
    pairs = [_pair("kd", "progressive", -0.01, 0.01, g=-1.5), _pair("combined", "progressive", 0.01, 0.02),
             _pair("kd", "combined", -0.02, 0.2)]
    means = {"kd": 0.87, "progressive": 0.88, "combined": 0.89}
    assert significance_lines(pairs, means) == [
        "- combined > progressive: +0.0100 (95% CI +0.0050 to +0.0150), Hedges' g = 1.50, p = 0.020 (Holm)",
        "- progressive > kd: +0.0100 (95% CI +0.0050 to +0.0150), Hedges' g = 1.50, p = 0.010 (Holm)"]


def test_minimum_detectable_effect_shrinks_with_n():
    rng = np.random.default_rng(0)
    few, many = rng.normal(0, 0.01, (2, 3)), rng.normal(0, 0.01, (2, 10))
    many = many / many.std(axis=1, ddof=1, keepdims=True) * few.std(axis=1, ddof=1, keepdims=True)  # same spread
    assert stats.minimum_detectable_effect(*many) < stats.minimum_detectable_effect(*few)


def test_minimum_detectable_effect_is_the_power_of_the_test_run():
    """Paired: statsmodels' one-sample power on the differences; Welch with equal n and sd: the pooled test's
    power at Welch's df; a stricter alpha (Holm) asks for a larger effect."""
    from statsmodels.stats.power import TTestIndPower, TTestPower
    a, b = np.array([0.91, 0.93, 0.92, 0.95, 0.90]), np.array([0.90, 0.90, 0.91, 0.93, 0.91])
    d = a - b
    expected = TTestPower().solve_power(nobs=5, alpha=0.05 / 3, power=0.8) * d.std(ddof=1)
    assert stats.minimum_detectable_effect(a, b, "paired", alpha=0.05 / 3) == pytest.approx(expected, rel=1e-4)
    c = b - b.mean() + a.mean()
    c = (c - c.mean()) * a.std(ddof=1) / c.std(ddof=1) + c.mean()  # same sd as a: Welch df = pooled df
    pooled = TTestIndPower().solve_power(nobs1=5, alpha=0.05, power=0.8) * a.std(ddof=1)
    assert stats.minimum_detectable_effect(a, c) == pytest.approx(pooled, rel=1e-4)
    assert stats.minimum_detectable_effect(a, c, alpha=0.05 / 3) > pooled


def test_pairs_carry_the_mde_of_their_test_at_holm_level():
    groups = {"x": [1.0, 1.2, 1.1, 1.3], "y": [1.0, 1.1, 1.0, 1.2], "z": [0.8, 1.0, 0.9, 0.95]}
    seeds = {g: [0, 1, 2, 3] for g in groups}
    for test in ("welch", "paired"):
        pairs = stats.pairwise(groups, seeds, test=test)
        for p in pairs:
            assert p["mde_alpha"] == pytest.approx(0.05 / 3)
            assert p["mde_80"] == pytest.approx(stats.minimum_detectable_effect(groups[p["a"]], groups[p["b"]], test,
                                                                                0.05 / 3))


@pytest.mark.parametrize("start, end, step, expected", [
    (1.0, 8.0, 0.5, 15), (0.0, 1.0, 0.1, 11), (2.0, 6.0, 0.25, 17), (1, 4, 1, 4)])
def test_ranges_are_inclusive_and_free_of_float_drift(start, end, step, expected):
    name = "alpha" if end <= 1 else "temperature"
    values = decimal_range(name, f"distill.{name}", start, end, step)
    assert len(values) == expected and float(values[-1]) == end
    assert all(len(v) <= 5 for v in values)  # 0.3, never 0.30000000000000004
    if name == "alpha":
        assert values[3] == "0.3"


def test_aggregate_of_missing_or_empty_directory_is_an_error(tmp_path):
    with pytest.raises(SweepError, match="no such directory"):
        collect(tmp_path / "nope")
    with pytest.raises(SweepError, match="no runs found"):
        collect(tmp_path)
    with pytest.raises(UsageError):
        decimal_range("temperature", "distill.temperature", 1, 2, 0)
