"""The stored top-k teacher against the online full-vocabulary teacher across tokenizations: on real training batches
of ``+experiment=smollm2_cross`` (SmolLM2-135M-Instruct teacher, a BPE student of its own, randomly initialised),
``uld`` and ``gold`` and their gradients on the student's logits, from the top-k store (cached; the tail spread,
the chain rule's later factors from the stored targets) and from the teacher run online; each side's time per batch.

    python benchmarks/cross_store_agreement.py                       # 4 batches of 8 rows
    python benchmarks/cross_store_agreement.py --batches 2 --k 64,256,1024 -- data.train_subset=1024

``--k``: also the top-k forms of other k, made from the online logits as a store would keep them (the builder's own
reduction: ``builder._top_k``), without building their stores.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from common import machine, parse_with_overrides
from entrenar_bench.distill.cross_term import cross_divergence
from entrenar_bench.files import CONF_DIR
from entrenar_bench.models.references import with_local_files
from entrenar_bench.run.app import distill_settings
from entrenar_bench.run.finetune import build_student
from entrenar_bench.distill.losses import TopKTeacher
from entrenar_bench.run.model_cache import load_teacher
from entrenar_bench.tasks import task_for
from entrenar_bench.teacher_signal.builder import _top_k
from entrenar_bench.teacher_signal.plan import TeacherPlan


def value_and_grad(settings, logits: torch.Tensor, teacher, mask: torch.Tensor) -> tuple[float, torch.Tensor]:
    z = logits.detach().requires_grad_()
    value = cross_divergence(settings, z, teacher, mask)
    value.backward()
    return float(value.detach()), z.grad.flatten().double()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--k", default="", help="comma-separated k of top-k forms made from the online logits")
    args, overrides = parse_with_overrides(parser)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["+experiment=smollm2_cross", "distill.logit_loss=gold",
                                           "distill.teacher_outputs=cached", *overrides])
    cfg = with_local_files(cfg)
    data = instantiate(cfg.data)
    data.setup("fit")
    task = task_for(data)
    settings = distill_settings(cfg)
    teacher, teacher_dir = load_teacher(cfg, task.teacher_task())
    L.seed_everything(cfg.seed, verbose=False)
    student, _ = build_student(cfg, task, None)
    task.prepare_models(settings, student, teacher)
    plan = TeacherPlan.make(cfg, settings, task, False)
    reader = plan.build(task, teacher, teacher_dir, torch.device("cpu"))["train"]
    rows = int(cfg.data.batch_size)
    tensors = data.batch_tensors("train", rows * args.batches)
    print(f"machine: {machine()}\nstore: {reader.path} ({plan.form}, {reader.rows} rows)")
    sums: dict[str, list[float]] = {}
    for b in range(args.batches):
        batch = task.batch([t[b * rows:(b + 1) * rows] for t in tensors])
        with torch.no_grad():
            start = time.perf_counter()
            online = task.teacher_forward(teacher, batch).logits
            online_s = time.perf_counter() - start
            start = time.perf_counter()
            forms = {plan.form: task.stored_teacher(reader.read(batch.index), batch)}
            stored_s = time.perf_counter() - start
            read = batch.teacher_inputs
            full = task.teacher_task().forward(teacher, read).logits
            for k in (int(k) for k in args.k.split(",") if k):
                top = _top_k(full, k, torch.nn.functional.pad(read[:, 1:], (0, 1), value=-1))
                forms[f"top{k}"] = task.stored_teacher(TopKTeacher(top["ids"].long(), top["log_probs"].float(),
                                                                   full.shape[-1], top["tail"],
                                                                   targets=top["targets"]), batch)
            logits = task.forward(student, batch.inputs).logits
        keep = batch.mask & online.aligned
        print(f"batch {b + 1}: {int(keep.sum())} aligned positions | teacher {online_s:.2f} s online, "
              f"{stored_s:.3f} s stored ({plan.form})", flush=True)
        sums.setdefault("online s", []).append(online_s)
        sums.setdefault("stored s", []).append(stored_s)
        for form, stored in forms.items():
            l1 = float((online.probs[keep] - stored.probs[keep]).abs().sum(-1).mean())  # the merged rows' distance
            line = [f"  {form}: L1(stored − online rows) {l1:.4f}"]
            for loss in ("uld", "gold"):
                s = dataclasses.replace(settings, logit_loss=loss)
                v_online, g_online = value_and_grad(s, logits, online, batch.mask)
                v_stored, g_stored = value_and_grad(s, logits, stored, batch.mask)
                cosine = float(torch.nn.functional.cosine_similarity(g_online, g_stored, dim=0))
                line.append(f"{loss} online {v_online:.4f} stored {v_stored:.4f} ({(v_stored / v_online - 1):+.2%}), "
                            f"gradient cosine {cosine:.4f}")
                for key, value in ((f"{form} {loss} relative", v_stored / v_online - 1),
                                   (f"{form} {loss} cosine", cosine)):
                    sums.setdefault(key, []).append(value)
            print(" | ".join(line), flush=True)
    print("mean: " + ", ".join(f"{key} {sum(v) / len(v):.4g}" for key, v in sums.items()))


if __name__ == "__main__":
    main()
