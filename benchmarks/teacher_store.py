"""Teacher store at vocabulary scale: a top-64 store of at least 100,000 positions at vocabulary 49,152,
built from random logits (no model needed), its bytes per position (target: at most ~400), the rounding of
its float16 log-probabilities against bfloat16's, then read in shuffled batches the way training reads it,
each reading in a fresh process: its peak memory growth must stay below the store's size on disk.

    python benchmarks/teacher_store.py                              # 782 rows × 128 positions, V = 49,152, k = 64
    python benchmarks/teacher_store.py --rows 100 --vocab 4096      # quick try

The logits are ``3 · N(0, 1)`` per token (seeded per chunk): the store's size does not depend on them, the
rounding error only through the range of the kept log-probabilities (printed): a 16-bit float rounds
``log p`` to within ``|log p|`` times 2⁻¹¹ (float16) or 2⁻⁸ (bfloat16).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import machine
from entrenar_bench.teacher_signal.builder import TeacherStore
from entrenar_bench.teacher_signal.sizing import describe_size, estimate_bytes, human_bytes
from entrenar_bench.training.memory import PeakMemory

TARGET_BYTES_PER_POSITION = 400
MB = 1e6


def random_logits(seq_len: int, vocab: int):
    """A stand-in teacher: ``compute_chunk(rows)`` gives the same logits for the same rows."""

    def compute(rows: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator().manual_seed(int(rows[0]))
        return 3 * torch.randn(len(rows), seq_len, vocab, generator=generator)

    return compute


def rounding(logits: torch.Tensor, k: int) -> str:
    """Largest error of the top-k log-probabilities stored in float16 and in bfloat16, and the KL between
    the (k + tail) distributions before and after rounding."""
    log_probs = torch.log_softmax(logits.double(), dim=-1).topk(k, dim=-1).values
    tail = (1 - log_probs.exp().sum(-1, keepdim=True)).clamp_min(0)
    exact = torch.cat([log_probs.exp(), tail], dim=-1)
    parts = []
    for dtype in (torch.float16, torch.bfloat16):
        rounded = log_probs.to(dtype).double()
        approx = torch.cat([rounded.exp(), tail], dim=-1)
        approx = approx / approx.sum(-1, keepdim=True)
        kl = (exact * (exact.clamp_min(1e-300).log() - approx.clamp_min(1e-300).log())).sum(-1)
        parts.append(f"{str(dtype).removeprefix('torch.')}: max |Δ log p| {(rounded - log_probs).abs().max():.2e}, "
                     f"max |Δp|/p {(rounded - log_probs).exp().sub(1).abs().max():.2e}, mean KL {kl.mean():.1e} nats")
    return (f"  top-{k} log-probabilities in [{log_probs.min():.1f}, {log_probs.max():.1f}]; "
            + "; ".join(parts))


def read(args: argparse.Namespace) -> None:
    """Child mode: read the store in shuffled batches and print the peak memory growth as JSON."""
    reader = TeacherStore(args.read).open("train", args.top_k)
    order = torch.randperm(reader.rows, generator=torch.Generator().manual_seed(0))
    batches = order.split(args.batch_rows)[: args.batches or None]
    positions = 0
    with PeakMemory(torch.device("cpu")) as peak:
        start = time.perf_counter()
        if args.mode == "whole":  # the whole store in memory, as the single .pt file was read
            whole = [np.load(path, allow_pickle=False) for path in sorted(reader.path.glob("*.npy"))]
            positions = sum(array.size for array, path in zip(whole, sorted(reader.path.glob("*.npy")))
                            if path.name.endswith(".tail.npy"))
        for batch in batches if args.mode != "whole" else ():
            if args.mode == "dense":
                positions += reader.logits(batch).shape[:-1].numel()
            else:
                positions += reader.sparse(batch).tail.numel()
        seconds = time.perf_counter() - start
    print(json.dumps({"peak_bytes": peak.peak_gb * 1024**3, "kind": peak.kind, "seconds": seconds,
                      "positions": positions, "batches": len(batches)}))


def measure(args: argparse.Namespace, store_dir: Path, mode: str, batch_rows: int, batches: int = 0) -> dict:
    command = [sys.executable, __file__, "--read", str(store_dir), "--mode", mode, "--batch-rows", str(batch_rows),
               "--batches", str(batches), "--top-k", str(args.top_k)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=782, help="sequences (default: 782 × 128 = 100,096 positions)")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=49_152)
    parser.add_argument("--top-k", type=int, default=64)
    parser.add_argument("--chunk-rows", type=int, default=4, help="sequences per 'teacher' call")
    parser.add_argument("--shard-mb", type=float, default=8.0)
    parser.add_argument("--batch-rows", type=int, default=16, help="sequences per training batch")
    parser.add_argument("--dense-batch-rows", type=int, default=2)
    parser.add_argument("--dense-batches", type=int, default=8)
    parser.add_argument("--dir", type=Path, default=None, help="where to build the store (default: a temporary one)")
    parser.add_argument("--read", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="sparse", help=argparse.SUPPRESS)
    parser.add_argument("--batches", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read:
        return read(args)

    store_dir = args.dir or Path(tempfile.mkdtemp(prefix="teacher-store-"))
    positions = args.rows * args.seq_len
    print(f"machine: {machine()}")
    print(f"{describe_size(positions, args.vocab, args.top_k)} ({args.rows} rows × {args.seq_len} positions, "
          f"vocabulary {args.vocab:,}); the exact form: {human_bytes(estimate_bytes(positions, args.vocab, 0))}")
    compute = random_logits(args.seq_len, args.vocab)
    print(rounding(compute(torch.arange(args.chunk_rows)), args.top_k))
    start = time.perf_counter()
    reader = TeacherStore(store_dir, shard_bytes=int(args.shard_mb * MB)).build(
        "train", compute, torch.arange(args.rows), top_k=args.top_k, chunk_rows=args.chunk_rows)
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in reader.path.glob("*.npy")) + (reader.path / "manifest.json").stat().st_size
    per_position = size / reader.positions
    print(f"built {reader.positions:,} positions in {seconds:.1f} s ({reader.positions / seconds:,.0f} positions/s) "
          f"in {len(reader.shards)} shards at {reader.path}")
    print(f"size on disk: {human_bytes(size)} = {per_position:.1f} bytes per position (target ≤ "
          f"{TARGET_BYTES_PER_POSITION}: {'PASS' if per_position <= TARGET_BYTES_PER_POSITION else 'FAIL'}); "
          f"exact / top-{args.top_k} = {estimate_bytes(positions, args.vocab, 0) / size:.0f}×")

    sparse = measure(args, store_dir, "sparse", args.batch_rows)
    print(f"read sparse (ids, log-probs, tail), shuffled batches of {args.batch_rows} rows, one epoch "
          f"({sparse['batches']} batches, {sparse['kind']}): peak growth {sparse['peak_bytes'] / MB:.1f} MB = "
          f"{sparse['peak_bytes'] / size:.3f} × the size on disk; {sparse['positions'] / sparse['seconds']:,.0f} "
          f"positions/s ({sparse['seconds'] / sparse['batches'] * 1e3:.2f} ms per batch)")
    dense = measure(args, store_dir, "dense", args.dense_batch_rows, args.dense_batches)
    one_batch = args.dense_batch_rows * args.seq_len * args.vocab * 4
    print(f"read dense log p̂, {dense['batches']} batches of {args.dense_batch_rows} rows: peak growth "
          f"{dense['peak_bytes'] / MB:.1f} MB (one batch of (B, L, V) float32 is {one_batch / MB:.1f} MB); "
          f"{dense['seconds'] / dense['batches'] * 1e3:.0f} ms per batch")
    whole = measure(args, store_dir, "whole", args.batch_rows)
    print(f"the whole store in memory (as the one .pt file was loaded): peak growth {whole['peak_bytes'] / MB:.1f} MB"
          f" = {whole['peak_bytes'] / size:.2f} × the size on disk")
    verdict = "PASS" if sparse["peak_bytes"] < size else "FAIL"
    print(f"target: a sparse epoch's peak growth below the size on disk ({human_bytes(size)}): {verdict}; "
          f"whole / sparse = {whole['peak_bytes'] / max(sparse['peak_bytes'], 1):.1f}×")


if __name__ == "__main__":
    main()
