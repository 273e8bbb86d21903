"""The memory estimate (run/memory_budget.py) beside the measured peak of real training steps.

Each case runs in its own process: data and (for a stored teacher) the teacher's top-k outputs are made first,
then the peak is measured from before the models are built (so it covers everything the estimate counts:
weights, gradients, optimiser state, activations, logits and their gradients, the teacher) through ``--steps``
training steps (the optimiser's state exists from the first step on, so the second step's backward is the
peak): on CUDA ``torch.cuda.max_memory_allocated``, on CPU the growth of the process's peak resident set
(``training/memory.py``'s PeakMemory, with glibc's mmap threshold fixed so freed tensors leave the resident set).

Cases: the image task (MLP student, CNN teacher, online), ``+experiment=lm`` (stored exact teacher and online),
and a SmolLM2-shaped student (randomly initialised LlamaConfig: hidden 576, 9 heads, 3 KV heads, intermediate
1536, vocabulary 49,152, 6 layers, tied embeddings; the teacher the same shape) at 64, 128 and 512 tokens a row,
batch 8, kd against a stored top-64 teacher and against an online teacher. Prints a table; exit 1 when a ratio
estimate / measured leaves [1.0, 1.5].

    python benchmarks/memory_estimate.py [--device cpu|cuda] [--cases smollm2-64-top64,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOW, HIGH = 1.0, 1.5
SMOLLM2 = dict(hidden_size=576, intermediate_size=1536, num_attention_heads=9, num_key_value_heads=3,
               num_hidden_layers=6, vocab_size=49_152, tie_word_embeddings=True, max_position_embeddings=2048)
CASES = ["image-online", "lm-stored", "lm-online",
         *(f"smollm2-{t}-{form}" for t in (64, 128, 512) for form in ("top64", "online"))]


class TokenRows:
    """Random token rows as the causal LM task reads a data module (ids, mask, row index): the SmolLM2 cases."""

    task = "causal_lm"
    reference = None

    def __init__(self, rows: int, tokens: int, vocab_size: int, batch_size: int):
        import torch

        self.vocab_size, self.batch_size = vocab_size, batch_size
        self.ids = torch.randint(0, vocab_size, (rows, tokens), generator=torch.Generator().manual_seed(0))

    def split_inputs(self, split: str):
        return self.ids

    def batch(self, start: int):
        import torch

        ids = self.ids[start:start + self.batch_size]
        return ids, torch.ones_like(ids), torch.arange(start, start + len(ids))


class StoredTopK:
    """The teacher's top-k outputs of every row, computed before the measurement: per batch only the rows read
    (as the store's reader returns them) count, as in a run reading the store."""

    is_exact = False
    length = None  # positions a row read (the warm-up's shorter rows)

    def __init__(self, teacher, ids, k: int, device):
        import torch

        from entrenar_bench.distill.losses import TopKTeacher

        with torch.no_grad():
            log_probs = torch.log_softmax(teacher(input_ids=ids.to(device)).logits.float(), -1)
        top = log_probs.topk(k, dim=-1)
        self.form = TopKTeacher(top.indices.cpu(), top.values.cpu(), log_probs.shape[-1])
        self.tail = (1 - top.values.exp().sum(-1)).cpu()

    def sparse(self, index):
        part = (index, slice(None, self.length))
        return self.form._replace(ids=self.form.ids[part], log_probs=self.form.log_probs[part], tail=self.tail[part])


def _smollm2(tokens: int, form: str, device, steps: int):
    """A SmolLM2-shaped kd run: (task, settings, student/teacher builder, stored signal, batches)."""
    import torch
    from transformers import LlamaConfig

    from entrenar_bench.distill.settings import DistillSettings
    from entrenar_bench.models.causal_lm import causal_lm
    from entrenar_bench.tasks import task_class

    data = TokenRows(8 * steps, tokens, SMOLLM2["vocab_size"], 8)
    task = task_class("causal_lm")(data)
    settings = DistillSettings(name="kd", temperature=1.0, alpha=0.5, teacher_top_k=64 if form == "top64" else None,
                               teacher_outputs="cached" if form == "top64" else "online")
    build = lambda seed: (torch.manual_seed(seed), causal_lm(LlamaConfig(**SMOLLM2)).to(device))[1]  # noqa: E731
    stored = None
    if form == "top64":
        stored = StoredTopK(build(1), data.ids, 64, device)
    return task, settings, build, stored, [data.batch(8 * i) for i in range(steps)]


def _composed(overrides: list[str], device, steps: int):
    """A Hydra-composed run's task, settings, model builder, stored exact teacher (or None) and batches."""
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from entrenar_bench.run import schema  # noqa: F401  (registers the config schemas)
    from entrenar_bench.run.app import distill_settings
    from entrenar_bench.run.model_cache import build_model
    from entrenar_bench.tasks import task_for

    with initialize_config_dir(config_dir=str(ROOT / "entrenar_bench" / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    task = task_for(datamodule)
    settings = distill_settings(cfg)
    specs = {0: cfg.student.model, 1: cfg.teacher.model}
    build = lambda seed: (torch.manual_seed(seed), build_model(specs[seed], datamodule).to(device))[1]  # noqa: E731
    stored = None
    if settings.uses_cached_outputs:
        teacher = build(1).eval()
        with torch.no_grad():
            logits = task.forward(teacher, task.split_inputs("train").to(device)).logits.cpu()
        stored = type("Exact", (), {"is_exact": True, "logits": lambda self, index: logits[index]})()
    loader = iter(task.train_loader(indexed=True))
    return task, settings, build, stored, [next(loader) for _ in range(steps)]


def measure(case: str, device_name: str, steps: int) -> dict:
    """One case in this process: the estimate and the measured peak, in GB."""
    import torch

    from entrenar_bench.run.job import store_top_k
    from entrenar_bench.run.memory_budget import GB, estimate_memory, trainable_parameters
    from entrenar_bench.training.memory import GIB, PeakMemory

    device = torch.device(device_name)
    kind, *rest = case.split("-")
    if kind == "smollm2":
        task, settings, build, stored, batches = _smollm2(int(rest[0]), rest[1], device, steps)
    else:
        overrides = {"image": [], "lm": ["+experiment=lm"]}[kind]
        online = rest[0] == "online"
        overrides += ["distill=kd", f"distill.teacher_outputs={'online' if online else 'cached'}"]
        task, settings, build, stored, batches = _composed(overrides, device, steps)
    if kind == "smollm2":  # warm up on 8 tokens a row: the same code, little memory
        stored and setattr(stored, "length", 8)
        _steps(task, settings, build, stored, [[x[:, :8] if x.dim() == 2 else x for x in b] for b in batches], device)
        stored and setattr(stored, "length", None)
    else:
        _steps(task, settings, build, stored, batches, device)  # lazy set-up (imports, thread pools), uncounted
    with PeakMemory(device) as peak:
        student, objective = _steps(task, settings, build, stored, batches, device)
    estimate = estimate_memory(task, settings, student, trainable_parameters(student, objective), build(1),
                               stored is None, store_top_k(settings, task), len(batches[0][0]))
    return {"case": case, "estimate_gb": estimate.total_gb, "measured_gb": peak.peak_gb * GIB / GB,
            "parts": estimate.as_record(), "kind": peak.kind}


def _steps(task, settings, build, stored, batches, device):
    """Build the student (and an online teacher) and take one training step a batch, as a run does (the run's
    optimiser, zero_grad to None, backward, step); the student and objective built."""
    from entrenar_bench.distill.module import DistillationModule
    from entrenar_bench.distill.optim import optimization
    from entrenar_bench.run.job import prepared_objective

    student = build(0)
    teacher = None if stored is not None else build(1).eval()
    objective = prepared_objective(settings, task, student, teacher)
    module = DistillationModule(task, student, objective, teacher, {"train": stored} if stored else None).to(device)
    optimizer = optimization(None, module.trainable_parameters(), 1e-4, 0.0, 1, len(batches))["optimizer"]
    for raw in batches:
        loss = module.batch_loss([x.to(device) for x in raw])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return student, objective


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process: one case, JSON on stdout
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.device, args.steps)))
        return 0
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "PYTHONPATH": str(ROOT)}
    from benchmarks.common import machine

    print(f"# {machine()}; device {args.device}")
    print(f"{'case':<22} {'estimate GB':>12} {'measured GB':>12} {'ratio':>6}")
    bad = 0
    for case in args.cases.split(","):
        done = subprocess.run([sys.executable, __file__, "--one", case, "--device", args.device, "--steps",
                               str(args.steps)], capture_output=True, text=True, env=env, cwd=ROOT)
        if done.returncode:
            print(f"{case:<22} failed: {done.stderr.strip().splitlines()[-1:]}")
            bad += 1
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        ratio = r["estimate_gb"] / r["measured_gb"] if r["measured_gb"] else float("inf")
        bad += not LOW <= ratio <= HIGH
        parts = ", ".join(f"{k} {v:.3g}" for k, v in r["parts"].items() if k != "total_gb" and v)
        print(f"{case:<22} {r['estimate_gb']:>12.4f} {r['measured_gb']:>12.4f} {ratio:>6.2f}   ({parts})", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
