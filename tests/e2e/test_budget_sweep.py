"""A compare sweep budgeted in tokens, end to end: a budget too small to learn anything leaves students no
better than word frequencies, and the report (text and JSON) and the exported card say so."""

import json
from pathlib import Path

from conftest import LM_FAST


def test_students_worse_than_the_unigram_baseline_are_flagged_in_the_report_and_the_card(run_cli, tmp_path):
    tiny = [*LM_FAST, "train.tokens=1", "train.lr=1e-7", "train.eval_every_tokens=100"]
    done = run_cli("compare", "--strategies", "none,kd", "--runs", "2", "--format", "json", "--", *tiny)
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(done.stdout)
    lines, judged = document["baselines"], document["usefulness"]
    assert lines["uniform"] > lines["unigram"] > 0
    assert judged["all_below"] and sorted(judged["below_line"]) == ["kd", "none"]
    assert document["best"]["useful"] is False and "no useful winner" in document["best"]["caveat"]
    for row in document["results"]:   # one step each: the same tokens, FLOPs split, recovery measured
        assert row["tokens_seen"] == document["results"][0]["tokens_seen"] > 0
        assert row["flops"]["student"] > 0 and row["recovery"]["n"] == 2
    rows = {row["strategy"]: row for row in document["results"]}
    assert rows["kd"]["flops"]["teacher"] > 0 and rows["none"]["flops"]["teacher"] == 0
    text = run_cli("aggregate", document["sweep_dir"]).stdout
    assert "predict no better than word frequencies" in text and "Caveat: no useful winner" in text
    exported = run_cli("export", document["sweep_dir"], "--to", str(tmp_path / "student"))
    assert exported.returncode == 0, exported.stderr[-2000:]
    card = (Path(exported.stdout.strip()) / "README.md").read_text()
    assert "## Baselines and usefulness" in card and "predict no better than word frequencies" in card
