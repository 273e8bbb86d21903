"""Where a job runs: its GPU and its CPU threads, from the launcher that started it.

A launcher is its YAML (``conf/launcher/<name>.yaml``): the user's knobs in the ``launcher`` node, wired into
Hydra's launcher plugin (``hydra.launcher``) through the resolvers below, which are evaluated on the machine
that launches. A launcher needs a rule here (:data:`RULES`) only where placement must know about it; one
without runs its jobs one at a time, here, one device each:

- joblib: ``n_jobs`` workers = ``jobs_per_gpu`` x visible GPUs on ``trainer=gpu`` (else one
  per usable core); job ``i`` runs on GPU ``i mod #GPUs``. Workers are reused, so each job
  empties the previous job's CUDA cache and resets the peak-memory counters.
- ray: each job asks for ``1 / jobs_per_gpu`` of a GPU; Ray sets ``CUDA_VISIBLE_DEVICES``. On an existing
  cluster (``launcher.address``) the jobs run elsewhere, given the launching machine's ENTRENAR_BENCH_HOME.
- submitit: one GPU per task; the scheduler sets ``CUDA_VISIBLE_DEVICES``; SLURM's jobs run elsewhere.
- threads: ``threads: null`` means usable cores / jobs running side by side on this machine,
  so k parallel jobs never oversubscribe the cores.
- one run on N devices (``trainer.devices=N``): Lightning starts ranks 1..N-1 by re-running
  ``python -m entrenar_bench.run`` (basic launcher), or SLURM starts all N (``launcher.tasks_per_node=N``).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig, OmegaConf

from entrenar_bench.errors import ConfigError

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


def ray_address(address: str | None) -> str:
    """Ray's ``address``: ``local`` (a new Ray here, never one found running on this machine) unless a
    cluster's ``HOST:PORT`` is given."""
    return address or "local"


def ray_object_store(address: str | None) -> int | None:
    """Ray's ``object_store_memory``: the plugin's 75 MB for a Ray it starts here; none (the cluster's own
    setting, which Ray requires) when joining an existing cluster at ``address``."""
    return None if address else 75 * 1024**2


def absolute(path: str) -> str:
    """``path`` made absolute where the sweep is launched: what Ray's workers (whose working directory is
    their own) are told ENTRENAR_BENCH_HOME is."""
    return os.path.abspath(path)


for _name, _fn in (("eb.joblib_workers", joblib_workers), ("eb.gpu_share", gpu_share), ("eb.one_gpu", one_gpu),
                   ("eb.ray_address", ray_address), ("eb.ray_object_store", ray_object_store),
                   ("eb.absolute", absolute)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)


def _refuse_devices(launcher: DictConfig, count: int) -> str:
    return (f"trainer.devices={count} needs launcher=basic or launcher=submitit_slurm "
            f"(with launcher.tasks_per_node={count}), not launcher={launcher.get('name')}")


def _slurm_devices(launcher: DictConfig, count: int) -> str | None:
    if launcher.get("tasks_per_node", 1) != count:
        return (f"trainer.devices={count} on SLURM needs launcher.tasks_per_node={count} "
                "(SLURM starts one process per device)")
    return None


def _per_core(key: str) -> Callable[[DictConfig, DictConfig], int]:
    """Jobs side by side when each takes ``launcher.<key>`` cores (all of them where unset)."""
    return lambda launcher, cfg: max(1, usable_cores() // int(launcher.get(key) or usable_cores()))


def _joblib_workers(launcher: DictConfig, cfg: DictConfig) -> int:
    workers = joblib_workers(launcher.get("n_jobs"), launcher.get("jobs_per_gpu", 1), cfg.trainer.accelerator)
    return usable_cores() if workers < 0 else max(1, workers)


@dataclass(frozen=True)
class Placement:
    """What placement knows of a launcher: how many of its jobs share this machine's cores, whether they share
    the visible GPUs by job number (one process pool), whether they run on other machines (no GPU needed here),
    and why a run on several devices cannot start under it (None: it can)."""

    side_by_side: Callable[[DictConfig, DictConfig], int] = lambda launcher, cfg: 1
    round_robin_gpus: bool = False
    remote: Callable[[DictConfig], bool] = lambda launcher: False
    devices: Callable[[DictConfig, int], str | None] = _refuse_devices


RULES = {
    "basic": Placement(devices=lambda launcher, count: None),
    "joblib": Placement(side_by_side=_joblib_workers, round_robin_gpus=True),
    "ray": Placement(side_by_side=_per_core("num_cpus"), remote=lambda launcher: bool(launcher.get("address"))),
    "submitit_local": Placement(side_by_side=_per_core("cpus_per_task")),
    "submitit_slurm": Placement(side_by_side=_per_core("cpus_per_task"), remote=lambda launcher: True,
                                devices=_slurm_devices),
}


def launcher_of(cfg: DictConfig) -> tuple[DictConfig, Placement]:
    """The ``launcher`` node (empty if none) and its placement rule."""
    launcher = cfg.get("launcher") or OmegaConf.create({})
    return launcher, RULES.get(launcher.get("name", "basic"), Placement())


def parallel_jobs(cfg: DictConfig) -> int:
    """How many jobs of this sweep run side by side on one machine."""
    launcher, rule = launcher_of(cfg)
    return rule.side_by_side(launcher, cfg)


def runs_elsewhere(cfg: DictConfig) -> bool:
    """The launcher sends the jobs to other machines (SLURM, a Ray cluster): this one needs no GPU."""
    launcher, rule = launcher_of(cfg)
    return rule.remote(launcher)


def device_count(devices) -> int | None:
    """How many devices ``trainer.devices`` asks for; None where Lightning decides ("auto", -1)."""
    if isinstance(devices, (list, tuple, ListConfig)):
        return len(devices)
    if isinstance(devices, str) and "," in devices:
        return len([d for d in devices.split(",") if d.strip()])
    try:
        count = int(devices)
    except (TypeError, ValueError):
        return None
    return count if count > 0 else None


def check_devices(cfg: DictConfig) -> None:
    """A run on several devices needs a launcher that lets its other ranks start (see the module docstring)."""
    count = device_count(cfg.trainer.get("devices", 1))
    if not count or count == 1:
        return
    launcher, rule = launcher_of(cfg)
    if (reason := rule.devices(launcher, count)) is not None:
        raise ConfigError(reason)


def job_number() -> int:
    from hydra.core.hydra_config import HydraConfig

    return int(HydraConfig.get().job.num) if HydraConfig.initialized() else 0


RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")  # Lightning's, in its order


def first_rank() -> bool:
    """False in the other processes of one run spread over several devices (read from the environment, as
    Lightning does, without loading it; the process group itself is gone once the fit ends)."""
    rank = next((os.environ[v] for v in RANK_VARIABLES if v in os.environ), "0")
    return rank.strip() in ("0", "")


def place_job(cfg: DictConfig) -> DictConfig:
    """Set this job's CPU threads and GPU; return a copy of ``cfg`` whose trainer uses that GPU.

    Called after the job's config hash is taken: placement never changes what a run computes.
    """
    import torch

    threads = cfg.threads or max(1, usable_cores() // parallel_jobs(cfg))
    torch.set_num_threads(threads)
    if not (wants_gpu(cfg.trainer.accelerator) and torch.cuda.is_available()) or device_count(cfg.trainer.devices) != 1:
        return cfg
    index = job_number() % torch.cuda.device_count() if launcher_of(cfg)[1].round_robin_gpus else 0
    torch.cuda.set_device(index)
    torch.cuda.empty_cache()  # a reused worker holds the previous job's cached blocks
    torch.cuda.reset_peak_memory_stats(index)
    placed = copy.deepcopy(cfg)
    placed.trainer.devices = [index]
    return placed
