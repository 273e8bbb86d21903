"""The evaluation before training, cached by what it depends on: made once for equal starts, never for others."""

import shutil
from pathlib import Path
from types import SimpleNamespace

import torch
from torch.utils.data import DataLoader, TensorDataset

from conftest import FAST
from entrenar_bench.run.app import run
from entrenar_bench.run.metrics_before import FOLDER, CachedBefore


def _module(seed: int) -> SimpleNamespace:
    torch.manual_seed(seed)
    return SimpleNamespace(task=object(), student=torch.nn.Linear(4, 3), with_teacher=False, teacher_signal={},
                           eval_metrics={"val": {"accuracy": None}, "test": {"accuracy": None}})


def _loaders() -> list[DataLoader]:
    data = TensorDataset(torch.arange(40.0).view(10, 4), torch.arange(10))
    return [DataLoader(data, batch_size=4, shuffle=True), DataLoader(data, batch_size=4)]


def test_equal_starts_share_one_evaluation_and_the_random_state_is_left_alone(tmp_path):
    calls = []

    def evaluate():
        calls.append(1)
        return {"accuracy": 0.25 * len(calls)}

    cpu = torch.device("cpu")
    first = CachedBefore(tmp_path, _module(0), None, "32-true")
    state = torch.get_rng_state()
    assert first(evaluate, _loaders(), cpu) == {"accuracy": 0.25} and not first.reused
    assert torch.equal(torch.get_rng_state(), state)  # iterating the loaders for their digest drew nothing
    again = CachedBefore(tmp_path, _module(0), None, "32-true")
    assert again(evaluate, _loaders(), cpu) == {"accuracy": 0.25} and again.reused and again.path == first.path
    other = CachedBefore(tmp_path, _module(1), None, "32-true")  # other starting weights
    assert other(evaluate, _loaders(), cpu) == {"accuracy": 0.5} and not other.reused
    assert len(calls) == 2 and other.as_record() == {"file": str(other.path), "reused": False}


def test_runs_of_one_start_reuse_it_with_the_same_results(compose_cfg, tmp_path):
    cfg = compose_cfg("distill=kd", *FAST)
    shutil.rmtree(Path(cfg.paths.cache_dir) / FOLDER, ignore_errors=True)  # the session's earlier runs of this start
    first = run(cfg, tmp_path / "a")
    again = run(compose_cfg("distill=kd", *FAST), tmp_path / "b")
    seed = run(compose_cfg("distill=kd", *FAST, "seed=1"), tmp_path / "c")  # another random start
    assert not first["metrics_before_cache"]["reused"] and again["metrics_before_cache"]["reused"]
    assert again["metrics_before"] == first["metrics_before"] and again["metrics"] == first["metrics"]
    assert not seed["metrics_before_cache"]["reused"] and seed["metrics_before"] != first["metrics_before"]
