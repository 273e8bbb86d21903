"""Synthetic run directories in the shape of a real ``result.json`` (copied from ``python -m entrenar_bench.run
+experiment=lm train.epochs=2``), with the ``primary_metric`` a language-model run records."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

LM_PRIMARY = {"name": "loss", "lower_is_better": True}


def nest(dotted: dict[str, Any]) -> dict[str, Any]:
    """``{"distill.name": "kd"}`` -> ``{"distill": {"name": "kd"}}``."""
    tree: dict[str, Any] = {}
    for key, value in dotted.items():
        node = tree
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return tree


def lm_metrics(loss: float, val_loss: float, accuracy: float, val_accuracy: float | None = None) -> dict[str, float]:
    """A language model's recorded metrics: cross-entropy, its perplexity, top-1 accuracy, KL to the teacher."""
    val_accuracy = accuracy if val_accuracy is None else val_accuracy
    return {"accuracy": accuracy, "loss": loss, "perplexity": math.exp(loss), "teacher_kl": loss / 2,
            "val_accuracy": val_accuracy, "val_loss": val_loss, "val_perplexity": math.exp(val_loss),
            "val_teacher_kl": val_loss / 2}


def write_run(sweep: Path, job: int | str, *, seed: int, metrics: dict[str, float],
              config: dict[str, Any] | None = None,
              primary: dict[str, Any] | None = LM_PRIMARY, time_s: float = 1.0, memory_gb: float = 0.05,
              overrides: list[str] | None = None) -> Path:
    """One completed run; ``config``: dotted keys (``{"distill.name": "kd"}``)."""
    tree = nest({"seed": seed, "distill.name": "kd", "student.name": "llama_micro",
                 "data._target_": "entrenar_bench.data.markov.MarkovDataModule", "data.vocab_size": 32,
                 **(config or {})})
    record: dict[str, Any] = {
        "status": "completed", "seed": seed, "metrics": metrics, "time_s": time_s, "peak_memory_gb": memory_gb,
        "peak_memory_kind": "cpu_rss_growth", "device": "cpu: AMD EPYC", "devices": 1,
        "distill": {"name": tree["distill"]["name"], "alpha": 0.5, "temperature": 1.0},
        "params": {"student": 18528, "trainable": 18528, "projections": 0, "teacher": None},
        "teacher": None, "finetune": {"method": tree.get("finetune", {}).get("method", "none")},
        "config": tree, "config_hash": f"{job:0>64}", "overrides": overrides or [f"seed={seed}"],
        "error": None, "version": "0.1.0",
    }
    if primary is not None:
        record["primary_metric"] = primary
    job_dir = sweep / str(job)
    job_dir.mkdir(parents=True)
    (job_dir / "result.json").write_text(json.dumps(record))
    return job_dir


def cost_sweep(sweep: Path) -> Path:
    """A cost-performance sweep of a language model (primary metric loss): three configurations, three runs each;
    the dearer, the lower the loss (and the lower the accuracy)."""
    configs = [("LoRA r=8", 1.0, 2.40, 0.33), ("LoRA r=16", 1.5, 2.20, 0.30), ("Full", 4.0, 2.00, 0.29)]
    for c, (name, hours, loss, accuracy) in enumerate(configs):
        for seed in range(3):
            write_run(sweep, 10 * c + seed, seed=seed, time_s=3600 * hours,
                      config={"configuration": name, "finetune.method": "full" if name == "Full" else "lora"},
                      metrics=lm_metrics(loss + 0.01 * seed, loss + 0.005, accuracy + 0.001 * seed))
    return sweep
