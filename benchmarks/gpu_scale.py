"""GPU: runs per minute for ``+experiment=gpu_scale`` (or ``--experiment lm_gpu``) with 1, 2, 4 and 8 jobs per GPU
(joblib workers sharing the GPU), and the fraction of time the GPU was busy (``nvidia-smi``'s
``utilization.gpu``, sampled every 250 ms). Run by ``benchmarks/gpu.sh`` on a GPU machine.

1. Warm-up, timed apart: generate the data, train the cached teacher, one short student run.
   Its training time per epoch gives the epochs for a ~60 s run of the preset (reported) and
   the epochs used below (a ~``--run-s`` s run), so the whole benchmark fits its time budget.
2. For k = 1, 2, 4, 8: a kd sweep of 2k seeds with ``launcher=joblib launcher.jobs_per_gpu=k``
   (two waves of k), timed end to end: runs/minute = completed runs / wall time.
A phase that would overrun ``--budget-s`` is skipped (and says so); one that overruns is cut
off and reports what completed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

START = time.monotonic()


def elapsed() -> float:
    return time.monotonic() - START


def app(*args: str, timeout: float | None = None) -> tuple[float, int, str]:
    """``python -m entrenar_bench.run ARGS`` in its own process group, killed whole (workers too) on timeout."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "entrenar_bench.run", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        code = 124
    return time.perf_counter() - start, code, (err or "")[-2000:]


class GpuSampler:
    """``nvidia-smi`` in the background: GPU utilisation (%) and memory used (MiB) every 250 ms."""

    def __init__(self, path: Path):
        self.path = path
        self.proc = None

    def __enter__(self):
        try:
            self.proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=index,utilization.gpu,memory.used", "--format=csv,noheader,nounits",
                 "-lms", "250"], stdout=open(self.path, "w"), stderr=subprocess.DEVNULL)
        except OSError:
            self.proc = None
        return self

    def __exit__(self, *exc):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()

    def summary(self) -> dict:
        util, mem = [], []
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    _, u, m = (float(v) for v in line.split(","))
                except ValueError:
                    continue
                util.append(u)
                mem.append(m)
        if not util:
            return {"samples": 0}
        return {"samples": len(util), "util_mean_pct": statistics.fmean(util),
                "util_median_pct": statistics.median(util),
                "busy_fraction": sum(u > 0 for u in util) / len(util), "memory_max_mib": max(mem)}


def records(sweep_dir: Path) -> list[dict]:
    out = []
    for path in sorted(sweep_dir.glob("*/result.json")):
        try:
            out.append(json.loads(path.read_text()))
        except ValueError:
            pass
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget-s", type=float, default=400.0, help="stop starting phases after this")
    parser.add_argument("--run-s", type=float, default=10.0, help="target training seconds of one benchmark run")
    parser.add_argument("--jobs-per-gpu", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides for every run (e.g. a CPU smoke test)")
    parser.add_argument("--experiment", default="gpu_scale", help="conf/experiment/ preset to run (default: gpu_scale)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    home = Path(os.environ.setdefault("ENTRENAR_BENCH_HOME", "/tmp/entrenar-bench-gpu"))
    smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip() if \
        subprocess.run(["which", "nvidia-smi"], capture_output=True).returncode == 0 else "nvidia-smi not found"
    import torch

    if not torch.cuda.is_available() and not any(e.startswith("trainer=") for e in args.extra):
        print("no CUDA device here: nothing to measure (run it on a GPU machine; --extra trainer=cpu for a smoke test)")
        return
    result: dict = {"gpus": smi, "torch": torch.__version__, "cuda_devices": torch.cuda.device_count(),
                    "cpu_cores": os.cpu_count(), "phases": []}
    print(f"GPUs: {smi}; torch {torch.__version__}; {os.cpu_count()} CPU cores", flush=True)

    warm_epochs = 5
    stamp = time.strftime("%Y%m%d-%H%M%S")  # fresh directories: an earlier record would be skipped as done
    warm_dir = home / "outputs" / f"warmup-{stamp}"
    with GpuSampler(args.out / "smi_warmup.csv") as sampler:
        wall, code, tail = app(f"+experiment={args.experiment}", *args.extra, "distill=kd",
                               f"train.epochs={warm_epochs}",
                               f"hydra.run.dir={warm_dir}", timeout=max(60.0, args.budget_s / 2))
    warm_file = warm_dir / "result.json"
    warm = [json.loads(warm_file.read_text())] if warm_file.exists() else []
    if code != 0 or not warm or warm[0]["status"] != "completed":
        result["warmup"] = {"wall_s": wall, "exit": code, "stderr_tail": tail}
        (args.out / "gpu_results.json").write_text(json.dumps(result, indent=2))
        sys.exit(f"warm-up run failed (exit {code}):\n{tail}")
    per_epoch = warm[0]["time_s"] / warm_epochs
    teacher = json.loads((Path(warm[0]["teacher"]["cache"]) / "teacher.json").read_text())
    epochs = max(3, min(400, round(args.run_s / per_epoch)))
    result["warmup"] = {"wall_s": wall, "student_s_per_epoch": per_epoch, "teacher_train_s": teacher["time_s"],
                        "teacher_accuracy": teacher["metrics"]["accuracy"], "device": warm[0]["device"],
                        "epochs_for_60s_run": round(60 / per_epoch), "gpu": sampler.summary(),
                        "peak_memory_gb": warm[0]["peak_memory_gb"]}
    result["bench_epochs"] = epochs
    print(f"warm-up {wall:.1f} s (data, teacher {teacher['time_s']:.1f} s, student {warm_epochs} epochs): "
          f"{per_epoch:.3f} s/epoch -> ~60 s run = {round(60 / per_epoch)} epochs; benchmark runs use {epochs} epochs",
          flush=True)

    last_rate = None
    for k in args.jobs_per_gpu:
        jobs = 2 * k
        predicted = jobs / last_rate + 15 if last_rate else 0.0
        left = args.budget_s - elapsed()
        if predicted > left or left < 30:
            result["phases"].append({"jobs_per_gpu": k,
                                     "skipped": f"out of time ({left:.0f} s left, ~{predicted:.0f} s needed)"})
            print(f"k={k}: skipped, out of time", flush=True)
            continue
        sweep_dir = home / "outputs" / f"k{k}-{stamp}"
        seeds = ",".join(str(s) for s in range(jobs))
        with GpuSampler(args.out / f"smi_k{k}.csv") as sampler:
            wall, code, tail = app("-m", f"+experiment={args.experiment}", *args.extra, "distill=kd",
                                   f"seed={seeds}", f"train.epochs={epochs}",
                                   "launcher=joblib", f"launcher.jobs_per_gpu={k}", f"hydra.sweep.dir={sweep_dir}",
                                   timeout=left)
        done = [r for r in records(sweep_dir) if r["status"] == "completed"]
        last_rate = len(done) / wall if done else None
        phase = {"jobs_per_gpu": k, "jobs": jobs, "completed": len(done), "wall_s": wall, "exit": code,
                 "runs_per_min": 60 * len(done) / wall,
                 "train_s_per_run_mean": statistics.fmean(r["time_s"] for r in done) if done else None,
                 "peak_memory_gb_max": max((r["peak_memory_gb"] for r in done), default=None),
                 "accuracy_mean": statistics.fmean(r["metrics"]["accuracy"] for r in done) if done else None,
                 # language models: tokens trained per second of wall time, all jobs together (0 for images)
                 "tokens_per_s": sum(r["tokens_per_s"] * r["time_s"] for r in done if r.get("tokens_per_s")) / wall,
                 "gpu": sampler.summary()}
        if code != 0:
            phase["stderr_tail"] = tail
        result["phases"].append(phase)
        gpu = phase["gpu"]
        print(f"k={k}: {len(done)}/{jobs} runs in {wall:.1f} s = {phase['runs_per_min']:.2f} runs/min; "
              f"training {phase['train_s_per_run_mean'] or float('nan'):.1f} s/run; "
              f"GPU util mean {gpu.get('util_mean_pct', float('nan')):.0f}%, "
              f"max memory {gpu.get('memory_max_mib', float('nan')):.0f} MiB", flush=True)

    base = next((p for p in result["phases"] if p.get("completed")), None)
    lines = ["| jobs per GPU | runs | wall (s) | runs/min | x k=1 | train s/run | tokens/s | GPU util mean "
             "| GPU mem max (MiB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in result["phases"]:
        if "skipped" in p:
            lines.append(f"| {p['jobs_per_gpu']} | skipped: {p['skipped']} | | | | | | | |")
            continue
        g = p["gpu"]
        lines.append(f"| {p['jobs_per_gpu']} | {p['completed']}/{p['jobs']} | {p['wall_s']:.1f} "
                     f"| {p['runs_per_min']:.2f} "
                     f"| {p['runs_per_min'] / base['runs_per_min']:.2f} | {p['train_s_per_run_mean'] or 0:.1f} "
                     f"| {p['tokens_per_s'] or 0:,.0f} "
                     f"| {g.get('util_mean_pct', float('nan')):.0f}% | {g.get('memory_max_mib', float('nan')):.0f} |")
    summary = "\n".join([f"GPUs: {smi}", f"benchmark run: kd, {epochs} epochs "
                         f"({per_epoch:.3f} s/epoch alone; ~60 s run = {round(60 / per_epoch)} epochs)", *lines])
    print(summary, flush=True)
    (args.out / "gpu_summary.md").write_text(summary + "\n")
    (args.out / "gpu_results.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
