"""End to end: claims registered, a real compare sweep linked, `research check`, then bundle and verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entrenar_bench.aggregate import stats


@pytest.mark.slow
def test_registered_claims_get_the_verdicts_the_compare_report_implies(bench_home, tmp_path, run_cli):
    from conftest import FAST

    artifact = tmp_path / "artifact.yaml"
    assert run_cli("research", "init", "--id", "kd-claims", "--title", "KD", "--type", "dataset",
                   "-o", str(artifact)).returncode == 0
    registered = run_cli("research", "preregister", str(artifact), "--hypothesis", "kd beats the student alone",
                         "--methods", "compare none,kd", "--claim", "kd > none", "--claim", "none > kd on loss",
                         "--runs", "3")
    assert registered.returncode == 0, registered.stderr
    sweep = run_cli("compare", "--strategies", "none,kd", "--runs", "2", "--artifact", str(artifact),
                    "--format", "json", "--", *FAST)
    assert sweep.returncode == 0, sweep.stderr
    compare = json.loads(sweep.stdout)

    checked = run_cli("research", "check", str(artifact), "--format", "json")
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    accuracy, loss = report["claims"]
    pair = next(p for p in compare["pairs"] if {p["a"], p["b"]} == {"kd", "none"})
    flip = 1 if pair["a"] == "kd" else -1
    assert accuracy["groups"] == ["kd", "none"] and accuracy["metric"] == "accuracy"
    assert accuracy["difference"] == pytest.approx(flip * pair["mean_diff"])  # the report's own numbers
    assert accuracy["p_value"] == pytest.approx(pair["p_value"])
    means = {r["strategy"]: r for r in compare["results"]}
    assert loss["difference"] == pytest.approx(means["none"]["loss"] - means["kd"]["loss"])
    # each claim's two-sided p counts for it where the estimate lies on its side, against it otherwise
    on_side = [accuracy["difference"] > 0, loss["difference"] < 0]  # kd's accuracy higher; none's loss lower
    support = stats.holm([c["p_value"] if ok else 1.0 for c, ok in zip((accuracy, loss), on_side)])
    against = stats.holm([1.0 if ok else c["p_value"] for c, ok in zip((accuracy, loss), on_side)])
    for claim, p, q in zip((accuracy, loss), support, against):
        assert claim["verdict"] == ("supported" if p < 0.05 else "contradicted" if q < 0.05 else "not supported")
        assert claim["status"] == "confirmatory"
        assert claim["deviations"] == [f"fewer runs than planned ({claim['groups'][0]}: 2 of 3, "
                                       f"{claim['groups'][1]}: 2 of 3)"]

    made = run_cli("research", "bundle", str(artifact), "--format", "json")
    assert made.returncode == 0, made.stderr
    target = Path(json.loads(made.stdout)["bundle"])
    verified = run_cli("research", "verify", str(target), "--format", "json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    again = json.loads(verified.stdout)["verdicts"]["claims"]
    assert [(c["id"], c["verdict"], c["p_adjusted"]) for c in again] == [
        (c["id"], c["verdict"], c["p_adjusted"]) for c in report["claims"]]
