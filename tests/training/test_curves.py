"""Per-epoch metrics: every run writes ``metrics.csv`` (Lightning's CSVLogger) with one row an epoch."""

import csv
import math

import pytest

from conftest import FAST
from entrenar_bench.training.loop import VAL_POINTS
from entrenar_bench.run.app import run


@pytest.mark.parametrize("epochs", [3, 12])
def test_each_run_writes_one_row_an_epoch_with_validation_at_an_interval(compose_cfg, tmp_path, epochs):
    record = run(compose_cfg("distill=kd", *FAST, f"train.epochs={epochs}"), tmp_path)
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == list(range(epochs))
    batches = math.ceil(record["tokens_seen"] / epochs / record["budget"]["batch_size"])
    assert [int(r["step"]) for r in rows] == [(e + 1) * batches - 1 for e in range(epochs)]  # each epoch's last batch
    assert all(float(r["train/loss"]) > 0 for r in rows)
    every = max(1, math.ceil(epochs / VAL_POINTS))
    validated = [int(r["epoch"]) for r in rows if r["val/accuracy"]]
    assert validated == [e for e in range(epochs) if (e + 1) % every == 0]
    assert float(rows[-1]["val/accuracy"]) == pytest.approx(record["metrics"]["val_accuracy"])  # same split, same model
