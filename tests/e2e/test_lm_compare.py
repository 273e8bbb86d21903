"""``entrenar-bench compare`` and ``temperature`` on the language-model experiment, tiny, end to end."""

import json

from conftest import LM_FAST, read_results


def test_compare_none_and_kd_on_the_language_model_experiment(run_cli):
    proc = run_cli("compare", "--strategies", "none,kd", "--runs", "2", "--format", "json", "--", *LM_FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    document = json.loads(proc.stdout)
    assert sorted(r["strategy"] for r in document["results"]) == ["kd", "none"]
    assert all(r["n"] == 2 and 0 < r["accuracy"] <= 1 for r in document["results"])
    ceiling = document["ceiling"]
    assert 0 < ceiling["teacher_accuracy"] <= ceiling["bayes_accuracy"] <= 1 and ceiling["teacher_truth_kl"] > 0
    records = read_results(document["sweep_dir"])
    assert len(records) == 4 and all(r["status"] == "completed" and r["tokens_per_s"] > 0 for r in records)
    # the teacher's outputs were computed once for the whole sweep: both kd runs read the same files
    assert len({r["teacher"]["cache"] for r in records if r["teacher"]}) == 1


def test_temperature_text_report_shows_the_ceiling(run_cli):
    proc = run_cli("temperature", "--start", "1", "--end", "2", "--step", "1", "--runs", "1", "--", *LM_FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Ceiling (Bayes-optimal accuracy of the source): " in proc.stdout and "; teacher: " in proc.stdout
    assert "Best temperature: " in proc.stdout
