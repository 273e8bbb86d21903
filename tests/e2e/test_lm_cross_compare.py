"""``entrenar-bench compare --strategies none,kd -- +experiment=lm_cross distill.logit_loss=uld,gold``, tiny, end to
end: three groups (the baseline ignores the swept logit loss), each with the student's truth_kl in the JSON."""

import json

from conftest import read_results

CROSS_FAST = ["+experiment=lm_cross", "data.num_train=256", "data.num_val=64", "data.num_test=64",
              "data.train_subset=64", "data.seq_len=18", "teacher.train.epochs=1", "train.epochs=2"]


def test_compare_across_tokenizations_reports_three_groups_with_their_truth_kl(run_cli):
    proc = run_cli("compare", "--strategies", "none,kd", "--runs", "2", "--format", "json", "--", *CROSS_FAST,
                   "distill.logit_loss=uld,gold")
    assert proc.returncode == 0, proc.stderr[-3000:]
    document = json.loads(proc.stdout)
    groups = {r["strategy"]: r for r in document["results"]}
    assert sorted(groups) == ["gold", "none", "uld"]
    assert all(g["n"] == 2 and g["metrics"]["truth_kl"]["mean"] > 0 for g in groups.values())
    records = read_results(document["sweep_dir"])
    assert {r["config"]["distill"]["logit_loss"] for r in records if r["distill"]["name"] == "none"} == {"none"}
    assert len({r["teacher"]["cache"] for r in records if r["teacher"]}) == 1
