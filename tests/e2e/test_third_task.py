"""A third task defined in this file alone: sequence classification of token sequences (is token 0 more frequent
than token 1?), its own data module, models and metrics, with a lower-is-better primary metric (the error rate).
Registered through the protocol and run end to end through the CLI; nothing under entrenar_bench/ knows its name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchmetrics import MeanMetric, MetricCollection

from entrenar_bench.data.arrays import ArrayDataModule
from entrenar_bench.distill.objective import ModelOutputs
from entrenar_bench.tasks import Batch, MetricSpec, Task, register

TASK = "token_majority"
HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parents[1] / "entrenar_bench"


class MajorityData(ArrayDataModule):
    """1,000 sequences of 12 tokens over 4 symbols; label 1 when token 0 outnumbers token 1."""

    task = TASK

    def load_arrays(self):
        x = np.random.default_rng(0).integers(0, 4, size=(1000, 12))
        return x.astype(np.float32), ((x == 0).sum(1) > (x == 1).sum(1)).astype(np.int64)


class BagOfTokens(nn.Module):
    """Embedding bag of the tokens, one hidden layer, class logits."""

    def __init__(self, input_shape, num_classes, width: int = 16):
        super().__init__()
        self.embed = nn.EmbeddingBag(4, width, mode="mean")
        self.hidden = nn.Linear(width, width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(torch.relu(self.hidden(self.embed(x.long()))))


@register
class MajorityTask(Task):
    name = TASK
    primary_metric = MetricSpec("error_rate", lower_is_better=True)

    def batch(self, batch):
        return Batch(batch[0], batch[1], None, batch[2] if len(batch) > 2 else None)

    def split_inputs(self, split):
        return self.datamodule.train_inputs()

    @property
    def vocab_size(self):
        return self.datamodule.num_classes

    def train_loader(self, indexed):
        return self.datamodule.indexed_train_dataloader() if indexed else self.datamodule.train_dataloader()

    def forward(self, model, inputs, hidden=False, attentions=False):
        if hidden or attentions:
            raise ValueError("these models have no hidden states to match")
        return ModelOutputs(model(inputs))

    def feature_terms(self, names, student, teacher):
        raise ValueError("layer matching and attention transfer need hidden states, which these models lack")

    def lora_targets(self, model):
        return ["hidden", "head"]

    def make_metrics(self, with_teacher):
        return MetricCollection({"accuracy": MeanMetric(), "loss": MeanMetric(), "error_rate": MeanMetric()})

    def update_metrics(self, metrics, logits, batch, teacher_logits=None):
        correct = (logits.argmax(-1) == batch.targets).float()
        metrics["accuracy"].update(correct)
        metrics["error_rate"].update(1 - correct)
        metrics["loss"].update(nn.functional.cross_entropy(logits, batch.targets, reduction="none"))


def _configs(root: Path) -> Path:
    """Config files for the task, in a search-path directory of their own."""
    files = {
        "data/majority.yaml": f"_target_: {__name__}.MajorityData\nbatch_size: 64\n",
        "teacher/bag_teacher.yaml": "defaults:\n  - /schema/teacher@_here_\n  - _self_\nname: bag_teacher\nseed: 0\n"
                                    f"model:\n  _target_: {__name__}.BagOfTokens\n  width: 32\n"
                                    "train:\n  epochs: 20\n  lr: 0.01\n",
        "student/bag_student.yaml": f"name: bag_student\nmodel:\n  _target_: {__name__}.BagOfTokens\n  width: 2\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_no_file_of_the_package_knows_the_third_task():
    assert not [p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix in (".py", ".yaml")
                and TASK in p.read_text(errors="ignore")]


def test_a_third_task_runs_compare_end_to_end(bench_home, tmp_path):
    conf = _configs(tmp_path / "conf")
    env = {**os.environ, "ENTRENAR_BENCH_HOME": str(bench_home), "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "entrenar_bench.cli.main", "compare", "--strategies", "none,kd", "--runs", "2",
         "--format", "json", "--", f"hydra.searchpath=[file://{conf}]", "data=majority", "teacher=bag_teacher",
         "student=bag_student", "train.epochs=10", "train.lr=0.01"],
        capture_output=True, text=True, env=env, cwd=bench_home, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    document = json.loads(proc.stdout)
    assert sorted(r["strategy"] for r in document["results"]) == ["kd", "none"]
    records = [json.loads(p.read_text()) for p in sorted(Path(document["sweep_dir"]).glob("*/result.json"))]
    assert len(records) == 4 and all(r["status"] == "completed" for r in records)
    assert all(r["primary_metric"] == {"name": "error_rate", "lower_is_better": True} for r in records)
    for r in records:  # its own metric, measured: the error rate is one minus the accuracy
        assert abs(r["metrics"]["error_rate"] + r["metrics"]["accuracy"] - 1) < 1e-5
    kd = [r for r in records if r["distill"]["name"] == "kd"]
    assert all(r["teacher_signal"] == {"mode": "cached", "form": "exact"} for r in kd)  # the shared store
