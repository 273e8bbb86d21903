"""``--metric`` on every command and ``export``, through the command line on synthetic run directories: bad
input is one line and exit 2 before anything runs or is written; what is written is what the runs hold."""

import json
import os
from pathlib import Path

import pytest
import torch
from runs_on_disk import cost_sweep, lm_metrics, write_run
from safetensors.torch import load_file

from entrenar_bench import api
from conftest import outputs
from entrenar_bench.cli.main import COMMAND_MODULES
from entrenar_bench.cli.main import run_cli as cli
from entrenar_bench.errors import UsageError
from entrenar_bench.models.saving import STUDENT_DIR, save_student


def run(argv, capsys) -> tuple[int, str, str]:
    code = cli([str(a) for a in argv], "entrenar-bench", COMMAND_MODULES)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


@pytest.mark.parametrize("command", [["temperature"], ["alpha"], ["compare"], ["ablation"], ["cost-performance"],
                                     ["recommend"], ["aggregate", "."], ["export", ".", "--to", "x"]])
@pytest.mark.parametrize("name, message", [("val_loss", "name the test metric (loss)"),
                                           ("loss-", "letters, digits and underscores")])
def test_a_bad_metric_name_is_refused_before_anything_runs(bench_home, capsys, command, name, message):
    before = outputs(bench_home)
    code, _, err = run([*command, "--metric", name], capsys)
    assert code == 2 and message in err and "\n" not in err and "Traceback" not in err
    assert outputs(bench_home) == before


def compare_sweep(root: Path, students: bool = True) -> Path:
    """kd and none on a language model, three seeds each; each run's student saved as a state dict."""
    sweep = root / "compare"
    for name, loss, offset in (("kd", 2.1, 0), ("none", 2.3, 10)):
        for seed in range(3):
            job = write_run(sweep, offset + seed, seed=seed, config={"distill.name": name},
                            metrics=lm_metrics(loss + 0.01 * seed, loss + 0.02, 0.3),
                            overrides=["+bench=compare", f"distill={name}", f"seed={seed}", "+experiment=lm"])
            if students:
                torch.manual_seed(offset + seed)
                save_student(torch.nn.Linear(3, 2), job / STUDENT_DIR, model_config={"_target_": "torch.nn.Linear"})
    return sweep


def test_an_unrecorded_metric_after_the_sweep_names_the_known_ones_and_keeps_the_sweep(tmp_path):
    sweep = compare_sweep(tmp_path, students=False)
    with pytest.raises(UsageError, match=r"--metric rouge: not recorded by these runs; known: accuracy, loss, "
                                         r"perplexity, teacher_kl \(the sweep is kept: entrenar-bench aggregate "):
        api.report("compare", sweep, metric="rouge")
    assert (sweep / "0" / "result.json").is_file()


def test_aggregate_and_compare_json_name_the_metric(tmp_path, capsys):
    sweep = compare_sweep(tmp_path, students=False)
    code, out, _ = run(["aggregate", sweep, "--format", "json"], capsys)
    document = json.loads(out)
    assert code == 0 and document["metric"] == {"name": "loss", "lower_is_better": True}
    assert document["best"]["group"] == "kd" and document["best"]["selected_by"] == "val_loss"
    code, out, _ = run(["aggregate", sweep, "--format", "json", "--metric", "perplexity"], capsys)
    assert json.loads(out)["metric"] == {"name": "perplexity", "lower_is_better": True}


def test_recommend_with_max_perplexity_from_a_sweep(tmp_path, capsys):
    sweep = cost_sweep(tmp_path / "cost")
    code, out, err = run(["recommend", "--from", sweep, "--max-perplexity", "10", "--max-cost", "5",
                          "--format", "json"], capsys)
    document = json.loads(out)
    assert code == 0, err
    assert document["metric"] == {"name": "loss", "lower_is_better": True} and document["selected_by"] == "val_loss"
    assert document["recommended"]["config"] == "LoRA r=16" and document["constraints"]["max_perplexity"] == 10
    assert document["recommended"]["metric"]["mean"] == pytest.approx(2.21)
    code, out, _ = run(["recommend", "--from", sweep, "--max-perplexity", "10", "--max-cost", "5"], capsys)
    assert "Max Perplexity: 10" in out and "  Loss: 2.210 ± 0.010 (n=3, test; chosen on validation loss 2.205)" in out


def test_a_perplexity_limit_on_classifiers_is_refused(tmp_path, capsys):
    sweep = tmp_path / "classifiers"
    for seed in range(2):
        write_run(sweep, seed, seed=seed, primary=None, config={"configuration": "LoRA r=8"},
                  metrics={"accuracy": 0.9, "loss": 0.3, "val_accuracy": 0.9, "val_loss": 0.3})
    code, _, err = run(["recommend", "--from", sweep, "--max-perplexity", "10"], capsys)
    assert code == 2 and err.endswith("--max-perplexity: these runs record no perplexity; they record accuracy, loss")


def test_cost_performance_front_and_winner_on_the_loss(tmp_path, capsys):
    sweep = cost_sweep(tmp_path / "cost")
    code, out, err = run(["cost-performance", "--from", sweep, "--format", "json"], capsys)
    document = json.loads(out)
    assert code == 0, err
    assert document["objectives"] == ["cost", "loss"] and document["metric"]["lower_is_better"] is True
    assert [r["pareto"] for r in document["results"]] == [True, True, True]  # dearer, lower loss: all on the front
    assert document["cost_efficiency_winner"]["efficiency_formula"] == "1 / loss / cost"
    code, out, _ = run(["cost-performance", "--from", sweep, "--metric", "accuracy", "--format", "json"], capsys)
    assert [r["pareto"] for r in json.loads(out)["results"]] == [True, False, False]  # r=8: cheapest, most accurate


def test_export_writes_the_selected_student_and_its_card(tmp_path, capsys):
    sweep = compare_sweep(tmp_path)
    code, out, err = run(["export", sweep, "--to", tmp_path / "kd"], capsys)
    assert code == 0, err
    target = Path(out.strip())
    assert sorted(p.name for p in target.iterdir()) == ["README.md", "model.safetensors", "model_config.json"]
    chosen = sweep / "0" / STUDENT_DIR  # kd, seed 0: the lowest validation loss, ties to the lower seed
    assert torch.equal(load_file(target / "model.safetensors")["weight"],
                       load_file(chosen / "model.safetensors")["weight"])
    card = (target / "README.md").read_text()
    assert "group `kd` (selected by the report), run `0`" in card
    assert "- Deciding metric: **loss** (lower is better)" in card
    assert "mean 2.1100 ± 0.0100 (sample std) over 3 runs, 95% CI [2.0852, 2.1348]" in card
    assert "- The group's runs: seeds 0, 1, 2." in card and "- This run: seed 0." in card
    assert "kd won against the runner-up, none: difference in test loss (kd − none, lower is better) -0.2000" in card
    assert "python -m entrenar_bench.run +bench=compare distill=kd seed=0 +experiment=lm   # this run" in card
    assert "No tokenizer" in card and "model_config.json" in card
    assert not list(tmp_path.glob(".*export*"))  # nothing half-written left


def test_export_of_a_named_group_says_so(tmp_path, capsys):
    sweep = compare_sweep(tmp_path)
    code, _, err = run(["export", sweep, "--group", "none", "--to", tmp_path / "none"], capsys)
    card = (tmp_path / "none" / "README.md").read_text()
    assert code == 0, err
    assert "group `none` (named with --group)" in card and "the report selects kd. Against it" in card


@pytest.mark.parametrize("case, message", [
    ("not a sweep", "not a sweep directory"),
    ("missing", "not a sweep directory"),
    ("no group", "--group bogus: no such group with a completed run; the groups: kd, none"),
    ("no student", "saved no student"),
    ("target not empty", "exists and is not empty"),
    ("target a file", "exists and is not a directory"),
    ("link in student", "not a regular file"),
])
def test_export_refusals_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, case, message):
    sweep = compare_sweep(tmp_path, students=case != "no student")
    target, argv = tmp_path / "out", []
    if case == "not a sweep":
        sweep = tmp_path / "empty"
        sweep.mkdir()
    elif case == "missing":
        sweep = tmp_path / "nowhere"
    elif case == "no group":
        argv = ["--group", "bogus"]
    elif case == "target not empty":
        target.mkdir()
        (target / "mine.txt").write_text("keep me")
    elif case == "target a file":
        target.write_text("keep me")
    elif case == "link in student":
        os.symlink("/etc/hostname", sweep / "0" / STUDENT_DIR / "extra.json")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run(["export", sweep, "--to", target, *argv], capsys)
    assert code == 2 and message in err and "\n" not in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if case.startswith("target"):
        assert "keep me" in (target / "mine.txt" if target.is_dir() else target).read_text()


def test_export_needs_a_target(capsys):
    code, _, err = run(["export", "."], capsys)
    assert code == 2 and "--to" in err
