"""The reference for ``overhead.py``: the same trainings as a sweep, in one process, in plain PyTorch.

No Hydra, no Lightning, no run records: a hand-written loop over the jobs in a JSON plan
(written by ``overhead.py`` from the composed configs). It reuses only the pure-PyTorch
pieces a user would also write by hand: the model classes and the loss terms. Per job:
same data split, seed, model, teacher (cached weights, outputs precomputed once over the
un-augmented training set), Adam + cosine schedule, epochs and batch size, then accuracy
and cross-entropy on the validation and test splits.

    python benchmarks/plain_loop.py PLAN.json   # prints one JSON line per job
"""

from __future__ import annotations

import argparse
import json
import random

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from entrenar_bench.distill.features import MapAttentionTransfer, MapLayerMatching
from entrenar_bench.distill.objective import DistillationObjective, ModelOutputs
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.models.networks import ConvNet, MLP

MODELS = {"entrenar_bench.models.networks.ConvNet": ConvNet, "entrenar_bench.models.networks.MLP": MLP}


def digits_splits(val_fraction: float, test_fraction: float, split_seed: int) -> dict[str, tuple[torch.Tensor, ...]]:
    """The digits data module's fixed stratified 60/20/20 split, as tensors."""
    digits = load_digits()
    x, y = (digits.images / 16.0)[:, None, :, :], digits.target
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=test_fraction, stratify=y,
                                                      random_state=split_seed)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=val_fraction / (1.0 - test_fraction),
                                                      stratify=y_rest, random_state=split_seed)
    def as_tensors(xs, ys):
        return torch.as_tensor(xs, dtype=torch.float32), torch.as_tensor(ys, dtype=torch.long)

    return {"train": as_tensors(x_train, y_train), "val": as_tensors(x_val, y_val), "test": as_tensors(x_test, y_test)}


def build(model_cfg: dict, input_shape, num_classes: int) -> torch.nn.Module:
    kwargs = {k: v for k, v in model_cfg.items() if k != "_target_"}
    return MODELS[model_cfg["_target_"]](input_shape=input_shape, num_classes=num_classes, **kwargs)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float, float]:
    model.eval()
    logits = torch.cat([model(xb) for xb in x.split(batch_size)])
    return float((logits.argmax(1) == y).float().mean()), float(F.cross_entropy(logits, y))


def train(job: dict, splits: dict) -> dict:
    random.seed(job["seed"])
    np.random.seed(job["seed"])
    torch.manual_seed(job["seed"])
    x, y = splits["train"]
    shape, classes = tuple(x.shape[1:]), int(y.max()) + 1
    settings = DistillSettings(**job["distill"])
    student = build(job["student"], shape, classes)
    teacher, t_logits, t_hidden, s_probe, t_probe = None, None, [], [], []
    if settings.needs_teacher:
        teacher = build(job["teacher"], shape, classes)
        teacher.load_state_dict(torch.load(job["teacher_weights"], map_location="cpu", weights_only=True))
        teacher.requires_grad_(False).eval()
        with torch.no_grad():
            t_logits, t_hidden = teacher.forward_with_hidden(x)
            if settings.needs_hidden:
                s_probe = student.eval().forward_with_hidden(torch.zeros(2, *shape))[1]
                t_probe = teacher.forward_with_hidden(torch.zeros(2, *shape))[1]
    features = [(name, weight, term(s_probe, t_probe)) for name, weight, term in
                (("layers", settings.layer_weight, MapLayerMatching),
                 ("attention", settings.attention_weight, MapAttentionTransfer)) if weight > 0]
    objective = DistillationObjective(settings, features)
    params = [*student.parameters(), *objective.parameters()]
    optimizer = torch.optim.Adam(params, lr=job["lr"], weight_decay=job["weight_decay"])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=job["epochs"])
    student.train()
    for _ in range(job["epochs"]):
        for index in torch.randperm(len(y)).split(job["batch_size"]):
            if settings.needs_hidden:
                logits, hidden = student.forward_with_hidden(x[index])
            else:
                logits, hidden = student(x[index]), []
            teacher_out = None if t_logits is None else ModelOutputs(
                t_logits[index], [h[index] for h in t_hidden] if settings.needs_hidden else [])
            loss = objective(ModelOutputs(logits, hidden), y[index], None, teacher_out)["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    val_acc, _ = evaluate(student, *splits["val"], job["batch_size"])
    acc, ce = evaluate(student, *splits["test"], job["batch_size"])
    return {"distill": settings.name, "seed": job["seed"], "accuracy": acc, "loss": ce, "val_accuracy": val_acc}


def main(plan_path: str) -> None:
    plan = json.loads(open(plan_path).read())
    torch.set_num_threads(plan["threads"])
    splits = digits_splits(**plan["split"])
    for job in plan["jobs"]:
        print(json.dumps(train(job, splits)), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", help="the JSON plan written by overhead.py")
    main(parser.parse_args().plan)
