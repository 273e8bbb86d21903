"""The framework against a plain loop on the smollm2 preset: one kd run, side by side, alternating.

- framework: ``python -m entrenar_bench.run +experiment=smollm2`` (kd, the top-64 teacher store built by an
  untimed warm-up run first); its process wall time and its ``time_s`` (the training steps).
- plain: this file with ``--plain``, a hand-written PyTorch/transformers loop doing the same steps on the same
  data: the same from-teacher student (20 layers chosen by position, ``student.method=spread`` on both sides: an
  importance method's calibration pass is cached and untimed in the framework, and the plain loop has none), the
  preset's 128 training blocks of 64 tokens, batch 8 in a seeded shuffle, the preset's budget of
  ``train.tokens`` (steps = ceil(tokens / (batch x 63 targets a row)); ``train.epochs`` where tokens is null), AdamW
  3e-4 (weight decay 0.01) with 3 linear warm-up steps then cosine, no held-out curve on either side, and
  ``loss = (1 − α)·CE + α·KL(p̂ ‖ q)`` at T = 1 against the teacher's top-64 log-probabilities and flat tail
  (computed once in memory beforehand, untimed, as the store is), from the k entries and the tail; then the
  held-out cross-entropy on the test blocks. Target: framework ≤ 1.15× the plain loop's time.

    python benchmarks/smollm2_plain_loop.py [--repeats 2] [--home DIR]
    python benchmarks/smollm2_plain_loop.py --repeats 1 -- data.train_subset=16 train.tokens=1008 optim.warmup_steps=1
                                                  # smaller (benchmarks/quick.py): both sides take the overrides
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from common import bench_home, home_argument, machine, median, parse_with_overrides, ratio_line, run

TARGET = 1.15
PRESET = ["+experiment=smollm2", "distill=kd", "save_student=false", "student.method=spread",
          "train.eval_every_tokens=null"]


def plain(home: Path, overrides: list[str]) -> dict:
    """The plain loop, in this process; its timings and held-out CE."""
    import torch
    import torch.nn.functional as F
    from hydra.utils import instantiate
    from transformers import AutoModelForCausalLM, get_cosine_schedule_with_warmup

    from entrenar_bench.models.from_teacher import from_teacher
    from entrenar_bench.models.references import with_local_files
    from entrenar_bench.sweep.compose import compose_config

    start = time.perf_counter()
    # the preset's values and its cached files, nothing else
    cfg = with_local_files(compose_config([*PRESET, *overrides]))
    torch.manual_seed(0)
    data = instantiate(cfg.data)
    data.setup("fit")
    train_ids, train_mask = (t[:data.num_train] for t in data.splits["train"].tensors)
    teacher = AutoModelForCausalLM.from_pretrained(cfg.teacher.model.path, dtype=torch.float32).eval()
    k, alpha = int(cfg.distill.teacher_top_k), float(cfg.distill.alpha)
    teacher_start = time.perf_counter()
    with torch.no_grad():  # the teacher's top-k once (the framework reads its store), untimed below
        top = [torch.log_softmax(teacher(input_ids=rows).logits, -1).topk(k, -1) for rows in train_ids.split(16)]
    top_lp, top_ids = torch.cat([t.values for t in top]), torch.cat([t.indices for t in top])
    teacher_s = time.perf_counter() - teacher_start
    del teacher
    student = from_teacher(cfg.student.model.path, cfg.student.layers, method=cfg.student.method,
                           keep=cfg.student.keep)
    batch, tokens = int(cfg.data.batch_size), cfg.train.get("tokens")
    per_epoch = math.ceil(len(train_ids) / batch)
    steps = math.ceil(tokens / (batch * (train_ids.shape[1] - 1))) if tokens else int(cfg.train.epochs) * per_epoch
    optimiser = torch.optim.AdamW(student.parameters(), lr=float(cfg.train.lr), weight_decay=0.01)
    schedule = get_cosine_schedule_with_warmup(optimiser, int(cfg.optim.warmup_steps), steps)
    vocab = student.config.vocab_size
    setup_s, train_start = time.perf_counter() - start, time.perf_counter()
    student.train()
    for step in range(steps):
        if step % per_epoch == 0:
            order = torch.randperm(len(train_ids)).split(batch)
        rows = order[step % per_epoch]
        ids, mask = train_ids[rows], train_mask[rows][:, 1:]
        log_q = torch.log_softmax(student(input_ids=ids).logits[:, :-1], -1)
        ce = -log_q.gather(-1, ids[:, 1:, None])[..., 0]
        p_lp, p_ids = top_lp[rows][:, :-1], top_ids[rows][:, :-1]
        tail = (1 - p_lp.exp().sum(-1)).clamp_min(1e-30)
        flat = torch.log(tail / (vocab - k))
        log_q_top = log_q.gather(-1, p_ids)
        kl = ((p_lp.exp() * (p_lp - log_q_top)).sum(-1)
              + tail * flat - tail / (vocab - k) * (log_q.sum(-1) - log_q_top.sum(-1)))
        loss = ((1 - alpha) * ce + alpha * kl)[mask].mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    train_s = time.perf_counter() - train_start
    student.eval()
    test_ids, test_mask = data.splits["test"].tensors
    with torch.no_grad():
        nll = [F.cross_entropy(student(input_ids=ids).logits[:, :-1].transpose(1, 2), ids[:, 1:],
                               reduction="none")[m[:, 1:]]
               for ids, m in zip(test_ids.split(32), test_mask.split(32))]
    return {"setup_s": setup_s, "teacher_s": teacher_s, "train_s": train_s, "total_s": time.perf_counter() - start,
            "test_loss": float(torch.cat(nll).mean()), "steps": steps}


def framework(home: Path, name: str, overrides: list[str]) -> dict:
    wall, _ = run([sys.executable, "-m", "entrenar_bench.run", *PRESET, *overrides,
                   f"hydra.run.dir={home}/outputs/{name}"], home)
    record = json.loads((home / "outputs" / name / "result.json").read_text())
    return {"total_s": wall, "train_s": record["time_s"], "test_loss": record["metrics"]["loss"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--plain", action="store_true", help="run the plain loop only, print its JSON line")
    home_argument(parser)
    args, overrides = parse_with_overrides(parser)
    home = bench_home(args.home)
    if args.plain:
        print(json.dumps(plain(home, overrides)))
        return
    print(machine())
    framework(home, "warmup", overrides)  # converts the teacher and builds its top-64 store once
    sides: dict[str, list[dict]] = {"framework": [], "plain": []}
    for repeat in range(args.repeats):
        sides["framework"].append(framework(home, f"framework-{repeat}", overrides))
        wall, proc = run([sys.executable, __file__, "--plain", "--home", str(home), "--", *overrides], home)
        sides["plain"].append({**json.loads(proc.stdout.strip().splitlines()[-1]), "wall_s": wall})
        print(json.dumps({name: runs[-1] for name, runs in sides.items()}))
    train = median([f["train_s"] for f in sides["framework"]]) / median([p["train_s"] for p in sides["plain"]])
    total = (median([f["total_s"] for f in sides["framework"]])  # the plain side's teacher pass is the store's
             / median([p["wall_s"] - p["teacher_s"] for p in sides["plain"]]))
    print(ratio_line("training steps, framework / plain", train, f"<= {TARGET}", train <= TARGET))
    print(ratio_line("whole process, framework / plain", total, f"<= {TARGET}", total <= TARGET))


if __name__ == "__main__":
    main()
