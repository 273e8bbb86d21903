"""Where a job runs: its GPU and its CPU threads, from the launcher that started it.

The ``launcher`` node (``conf/launcher/*.yaml``) holds the user's knobs; the functions
below turn them into Hydra launcher settings (as OmegaConf resolvers, so they are
evaluated on the machine that launches) and into per-job placement at job start:

- joblib: ``n_jobs`` workers = ``jobs_per_gpu`` x visible GPUs on ``trainer=gpu`` (else one
  per usable core); job ``i`` runs on GPU ``i mod #GPUs``. Workers are reused, so each job
  empties the previous job's CUDA cache and resets the peak-memory counters.
- ray: each job asks for ``1 / jobs_per_gpu`` of a GPU; Ray sets ``CUDA_VISIBLE_DEVICES``.
- submitit: one GPU per task; the scheduler sets ``CUDA_VISIBLE_DEVICES``.
- threads: ``threads: null`` means usable cores / jobs running side by side on this machine,
  so k parallel jobs never oversubscribe the cores.
"""

from __future__ import annotations

import copy
import os

from omegaconf import DictConfig, OmegaConf

GPU_ACCELERATORS = ("gpu", "cuda")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def wants_gpu(accelerator: str | None) -> bool:
    return str(accelerator) in GPU_ACCELERATORS


def joblib_workers(n_jobs: int | None, jobs_per_gpu: int, accelerator: str) -> int:
    """``n_jobs`` if given; else ``jobs_per_gpu`` x visible GPUs on a GPU trainer, else usable cores."""
    if n_jobs is not None:
        return int(n_jobs)
    import torch  # here, not at the top: the CLI registers these resolvers without importing torch

    if wants_gpu(accelerator) and torch.cuda.device_count() > 0:
        return int(jobs_per_gpu) * torch.cuda.device_count()
    return usable_cores()


def gpu_share(jobs_per_gpu: int, accelerator: str) -> float:
    """Ray's fractional ``num_gpus`` per job: ``1 / jobs_per_gpu`` on a GPU trainer, else 0."""
    return 1.0 / int(jobs_per_gpu) if wants_gpu(accelerator) else 0.0


def one_gpu(accelerator: str) -> int | None:
    """submitit's ``gpus_per_node`` (one task per job): 1 on a GPU trainer, else none."""
    return 1 if wants_gpu(accelerator) else None


for _name, _fn in (("eb.joblib_workers", joblib_workers), ("eb.gpu_share", gpu_share), ("eb.one_gpu", one_gpu)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)


def parallel_jobs(cfg: DictConfig) -> int:
    """How many jobs of this sweep run side by side on one machine."""
    launcher = cfg.get("launcher") or {}
    name = launcher.get("name", "basic")
    if name == "joblib":
        workers = joblib_workers(launcher.get("n_jobs"), launcher.get("jobs_per_gpu", 1), cfg.trainer.accelerator)
        return usable_cores() if workers < 0 else max(1, workers)
    if name == "ray" and launcher.get("num_cpus"):
        return max(1, usable_cores() // int(launcher.num_cpus))
    if name.startswith("submitit") and launcher.get("cpus_per_task"):
        return max(1, usable_cores() // int(launcher.cpus_per_task))
    return 1


def job_number() -> int:
    from hydra.core.hydra_config import HydraConfig

    return int(HydraConfig.get().job.num) if HydraConfig.initialized() else 0


def place_job(cfg: DictConfig) -> DictConfig:
    """Set this job's CPU threads and GPU; return a copy of ``cfg`` whose trainer uses that GPU.

    Called after the job's config hash is taken: placement never changes what a run computes.
    """
    import torch

    threads = cfg.threads or max(1, usable_cores() // parallel_jobs(cfg))
    torch.set_num_threads(threads)
    if not (wants_gpu(cfg.trainer.accelerator) and torch.cuda.is_available()):
        return cfg
    launcher = (cfg.get("launcher") or {}).get("name", "basic")
    index = job_number() % torch.cuda.device_count() if launcher == "joblib" else 0
    torch.cuda.set_device(index)
    torch.cuda.empty_cache()  # a reused worker holds the previous job's cached blocks
    torch.cuda.reset_peak_memory_stats(index)
    placed = copy.deepcopy(cfg)
    placed.trainer.devices = [index]
    return placed
