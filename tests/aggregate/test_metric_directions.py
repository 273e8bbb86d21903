"""Every metric a run records has a direction, declared by its task where the metric is defined and recorded in
``result.json``; the reports' name table (for runs recorded before) agrees with every declaration."""

import json

import pytest
from runs_on_disk import lm_metrics, write_run

from entrenar_bench.aggregate.collect import collect
from entrenar_bench.aggregate.metrics import lower_is_better
from entrenar_bench.cli.main import COMMAND_MODULES
from entrenar_bench.cli.main import run_cli as cli
from entrenar_bench.tasks import task_class

LOWER, HIGHER = True, False
DIRECTIONS = {
    "classification": {"accuracy": HIGHER, "loss": LOWER},
    "causal_lm": {"accuracy": HIGHER, "loss": LOWER, "perplexity": LOWER, "teacher_kl": LOWER, "truth_kl": LOWER,
                  "bayes_accuracy": HIGHER, "sample_truth_kl": LOWER, "sample_invalid": LOWER, "rouge_l": HIGHER},
}


@pytest.mark.parametrize("task", sorted(DIRECTIONS))
def test_every_recorded_metric_declares_its_direction(task):
    declared = task_class(task).directions()
    assert declared == DIRECTIONS[task]
    assert {name: lower_is_better(name) for name in declared} == declared  # the fallback table agrees


def invalid_sweep(root, directions: bool):
    """Three groups of a language model whose own samples hold 5%, 1% and 20% impossible tokens; with
    ``directions`` the runs record their task's declarations, without they are older records."""
    sweep = root / "sweep"
    for g, (name, invalid) in enumerate((("kd", 0.05), ("mse", 0.01), ("none", 0.20))):
        for seed in range(3):
            metrics = {**lm_metrics(2.1, 2.1, 0.3), "sample_invalid": invalid + 0.001 * seed,
                       "val_sample_invalid": invalid + 0.002 * seed}
            job = write_run(sweep, 10 * g + seed, seed=seed, config={"distill.name": name}, metrics=metrics)
            if directions:
                path = job / "result.json"
                record = json.loads(path.read_text())
                path.write_text(json.dumps({**record, "metric_directions": task_class("causal_lm").directions()}))
    return sweep


@pytest.mark.parametrize("directions", [True, False])
def test_metric_sample_invalid_selects_the_lowest(tmp_path, capsys, directions):
    sweep = invalid_sweep(tmp_path, directions)
    assert collect(sweep, "sample_invalid").metric.lower_is_better
    code = cli(["aggregate", str(sweep), "--metric", "sample_invalid", "--format", "json"], "entrenar-bench",
               COMMAND_MODULES)
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and document["metric"] == {"name": "sample_invalid", "lower_is_better": True}
    assert document["best"]["group"] == "mse" and document["best"]["runner_up"] == "kd"


def test_a_recorded_direction_wins_over_the_name_table(tmp_path):
    sweep = invalid_sweep(tmp_path, directions=False)
    for path in sweep.glob("*/result.json"):  # a task of one's own declaring the opposite
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "metric_directions": {"sample_invalid": False}}))
    assert not collect(sweep, "sample_invalid").metric.lower_is_better
