"""Support for the claim tests: the ``entrenar`` command in process, a fresh artifact, and synthetic sweep
directories shaped as real runs write them (result.json copied from a real kd run on the digits, values
replaced), so claims can be checked without training. A helper module, not a conftest: the shared
tests/conftest.py is imported by name elsewhere."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from entrenar_bench.cli.main import entrenar_main
from entrenar_bench.research.artifact import format_time

# The record of `python -m entrenar_bench.run` (kd on the digits), its config cut to what grouping reads.
RECORD = {
    "config_hash": "9c0190caa7e0c20006e03e0a5f33474e5d4bd9b80aa77ff0d1565c4ff9a2b157",
    "device": "cpu: AMD EPYC", "devices": 1,
    "distill": {"alpha": 0.7, "attention_weight": 0.0, "beta": 0.5, "layer_weight": 0.0, "logit_loss": "kl",
                "name": "kd", "skew_lambda": 0.1, "teacher_outputs": "cached", "teacher_top_k": 0,
                "temperature": 4.0, "temperature_scaling": True},
    "error": None, "finetune": {"method": "none"},
    "metrics": {"accuracy": 0.9888888597488403, "loss": 0.03075249120593071, "val_accuracy": 0.9861111044883728,
                "val_loss": 0.035341471433639526},
    "overrides": [], "params": {"projections": 0, "student": 9802, "teacher": 151306, "trainable": 9802},
    "peak_memory_gb": 0.039859771728515625, "peak_memory_kind": "cpu_rss_growth",
    "peak_memory_per_device_gb": [0.039859771728515625], "resumed_from_epoch": None,
    "samples_per_s": 8129.969169825279, "seed": 0, "status": "completed",
    "teacher": {"accuracy": 0.9944444298744202, "cache": "/tmp/cache/teachers/1d0aa96ecbab095b",
                "params": 151306},
    "time_s": 13.247282708000057, "version": "0.1.0",
    "config": {"seed": 0, "data": {"name": "digits", "batch_size": 128},
               "distill": {"name": "kd", "temperature": 4.0, "alpha": 0.7}, "train": {"epochs": 100, "lr": 0.003}},
}


def later(minutes: float = 1.0) -> datetime:
    return datetime.now(timezone.utc) + timedelta(minutes=minutes)


def write_sweep(folder: Path, groups: dict[tuple[str, float], list[dict]], started: datetime | None = None) -> Path:
    """One job directory per run: ``groups`` maps (strategy, temperature) to each run's metrics (seed = index)."""
    started = started or later()
    job = 0
    for (name, temperature), runs in groups.items():
        for seed, metrics in enumerate(runs):
            record = copy.deepcopy(RECORD)
            record["config"].update(seed=seed)
            record["config"]["distill"].update(name=name, temperature=temperature)
            record["distill"].update(name=name, temperature=temperature)
            record.update(seed=seed, metrics={**RECORD["metrics"], **metrics},
                          overrides=[f"distill={name}", f"distill.temperature={temperature}", f"seed={seed}"],
                          started_at=format_time(started + timedelta(seconds=job)),
                          finished_at=format_time(started + timedelta(seconds=job + 1)))
            (folder / str(job)).mkdir(parents=True)
            (folder / str(job) / "result.json").write_text(json.dumps(record, indent=2))
            job += 1
    return folder


def runs(metric: str, values: list[float], **others: list[float]) -> list[dict]:
    """Per-run metrics: ``metric`` takes ``values`` (and each keyword its list), run by run."""
    return [{metric: v, **{k: vs[i] for k, vs in others.items()}} for i, v in enumerate(values)]


def entrenar(*argv: str) -> int:
    """The ``entrenar`` console script, in process: its exit code."""
    with pytest.raises(SystemExit) as done:
        entrenar_main(list(argv))
    return done.value.code


@pytest.fixture
def artifact(tmp_path):
    path = tmp_path / "artifact.yaml"
    assert entrenar("research", "init", "--id", "study", "--title", "t", "--type", "dataset", "-o", str(path)) == 0
    return path
