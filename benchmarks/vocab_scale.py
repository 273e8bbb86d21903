"""Losses at vocabulary scale: peak memory and time of one kd step — the forward and backward of the token
divergence on (B, T, V) student logits that require grad — chunked over positions against unchunked, and a
top-k teacher (sparse forward KL from its k entries and tail) against the dense teacher it stands for (rebuilt
per batch, as the store's reader does today), side by side in one process. Target: peak memory chunked /
unchunked <= 0.5.

Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA (the step's inputs included) and the growth of the
process's peak RSS on a CPU (inputs excluded; glibc is told to return every freed block of 64 KiB or more, so
that one side's freed memory is not reused unseen by the next).

    python benchmarks/vocab_scale.py                         # 16 x 64 x 49152, kl, top-64
    python benchmarks/vocab_scale.py --loss jsd --repeats 5
"""

from __future__ import annotations

import argparse
import ctypes
import time
from collections.abc import Callable

import torch
from common import machine, median, ratio_line

from entrenar_bench.distill import losses
from entrenar_bench.training.memory import PeakMemory

TARGET = 0.5
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def return_freed_memory() -> None:
    """glibc: serve blocks of 64 KiB and more by mmap, so a freed tensor leaves the RSS at once."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 64 * 1024)
    except (OSError, AttributeError):
        pass


def measure(step: Callable[[], torch.Tensor], student: torch.Tensor,
            device: torch.device) -> tuple[float, float, torch.Tensor]:
    """``(seconds, peak GiB, loss)`` of one ``step()``, the previous step's gradient freed before."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    student.grad = None
    sync()
    with PeakMemory(device) as peak:
        start = time.perf_counter()
        loss = step()
        sync()
        seconds = time.perf_counter() - start
    return seconds, peak.peak_gb, loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="16x64x49152", help="B x T x V (default 16x64x49152, SmolLM2's vocabulary)")
    parser.add_argument("--loss", default="kl", choices=list(losses.TOKEN_LOSSES))
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--chunk-tokens", type=int, default=0, help="positions per chunk (0: automatic)")
    parser.add_argument("--top-k", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="alternate the sides this many times (median)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    b, t, v = (int(x) for x in args.shape.lower().split("x"))
    device = torch.device(args.device)
    return_freed_memory()

    gen = torch.Generator().manual_seed(0)
    student = (torch.randn(b, t, v, generator=gen) * 3).to(device).requires_grad_()
    teacher = (torch.randn(b, t, v, generator=gen) * 3).to(device)
    mask = torch.ones(b, t, dtype=torch.bool, device=device)
    top_log_probs, top_ids = torch.log_softmax(teacher, dim=-1).topk(args.top_k, dim=-1)
    top = losses.TopKTeacher(top_ids.int(), top_log_probs, v)
    options = dict(temperature=args.temperature)
    chunk = losses.chunk_positions(args.chunk_tokens, v)

    def step(divergence: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            loss = divergence()
            loss.backward()
            return loss.detach()
        return run


    sides = {
        "unchunked": step(lambda: losses.token_divergence(args.loss, student, teacher, mask, chunk_tokens=b * t,
                                                          **options)),
        "chunked": step(lambda: losses.token_divergence(args.loss, student, teacher, mask,
                                                        chunk_tokens=args.chunk_tokens, **options)),
        f"top-{args.top_k} dense": step(lambda: losses.forward_kl(student, top.logits(), mask,
                                                                  chunk_tokens=args.chunk_tokens, **options)),
        f"top-{args.top_k} sparse": step(lambda: losses.forward_kl(student, top, mask, chunk_tokens=args.chunk_tokens,
                                                                     **options)),
    }
    copy_gib = b * t * v * 4 / 1024**3
    print(f"machine: {machine()}")
    print(f"device: {device}; B x T x V = {b} x {t} x {v} ({b * t} positions; one float32 copy of the logits "
          f"{copy_gib * 1024:.0f} MiB); loss {args.loss} at T = {args.temperature:g}; chunks of {chunk} positions; "
          f"peak memory as {PeakMemory(device).kind}")
    measure(sides["chunked"], student, device)  # warm-up: first-touch costs and lazy initialisation
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in sides}
    for repeat in range(args.repeats):
        for name, run in sides.items():
            results[name].append(measure(run, student, device))
        print(f"[{repeat + 1}] " + " | ".join(f"{name} {r[-1][0]:.2f} s {r[-1][1]:.2f} GiB"
                                              for name, r in results.items()), flush=True)
    summary = {name: (median([r[0] for r in rs]), median([r[1] for r in rs]), rs[-1][2].item())
               for name, rs in results.items()}
    for name, (seconds, peak, loss) in summary.items():
        print(f"{name:>16}: {seconds:6.2f} s  peak {peak:6.3f} GiB ({peak / copy_gib:4.1f} logit copies)  "
              f"loss {loss:.6f}")
    (t_whole, m_whole, l_whole), (t_chunk, m_chunk, l_chunk) = summary["unchunked"], summary["chunked"]
    names = list(sides)
    (t_dense, m_dense, l_dense), (t_sparse, m_sparse, l_sparse) = summary[names[2]], summary[names[3]]
    print(f"losses agree: chunked vs unchunked {abs(l_chunk - l_whole) / abs(l_whole):.1e} relative; "
          f"sparse vs dense top-{args.top_k} {abs(l_sparse - l_dense) / abs(l_dense):.1e}")
    print(ratio_line("peak memory chunked / unchunked", m_chunk / m_whole,
                     f"<= {TARGET}x", m_chunk / m_whole <= TARGET))
    print(f"time chunked / unchunked: {t_chunk / t_whole:.2f}x")
    print(f"top-{args.top_k} sparse / dense: peak memory {m_sparse / m_dense:.2f}x, time {t_sparse / t_dense:.2f}x")


if __name__ == "__main__":
    main()
