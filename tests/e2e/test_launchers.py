"""Sweeps through Hydra's real launcher plugins (joblib, submitit_local, Ray on a local cluster)
aggregate to the same table as the basic launcher; placement and the missing-extra check."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from entrenar_bench.aggregate.collect import collect
from entrenar_bench.run.placement import gpu_share, joblib_workers, one_gpu, parallel_jobs, place_job, usable_cores
from conftest import CONF_DIR, FAST, _env

SWEEP = ["-m", "distill=none,kd", "seed=0,1,2", *FAST]
KEYS = ["group", "seed", "accuracy", "loss"]


def _sweep(run_app, sweep_dir, *overrides):
    proc = run_app(*SWEEP, *overrides, f"hydra.sweep.dir={sweep_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return collect(sweep_dir)


@pytest.fixture(scope="module")
def basic(run_app, tmp_path_factory):
    return _sweep(run_app, tmp_path_factory.mktemp("basic") / "sweep")


def _same_table(collection, reference):
    assert list(collection.runs.columns) == list(reference.runs.columns)
    assert collection.group_keys == reference.group_keys and "distill.name" in reference.group_keys
    assert (collection.runs["status"] == "completed").all() and not collection.problems
    got = collection.runs[KEYS].sort_values(["group", "seed"]).reset_index(drop=True)
    want = reference.runs[KEYS].sort_values(["group", "seed"]).reset_index(drop=True)
    # Same seeds, same deterministic CPU training: the same numbers, whichever process ran them.
    assert got.to_dict("records") == want.to_dict("records")


@pytest.fixture(scope="module")
def run_app(bench_home):
    """conftest's ``run_app``, module-scoped so the basic reference sweep runs once."""

    def _run(*args):
        return subprocess.run([sys.executable, "-m", "entrenar_bench.run", *args], capture_output=True, text=True,
                              env=_env(bench_home), cwd=bench_home, timeout=900)

    return _run


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_launcher_sweep_matches_basic(launcher, basic, run_app, tmp_path):
    extra = ["launcher.n_jobs=2"] if launcher == "joblib" else []
    _same_table(_sweep(run_app, tmp_path / "sweep", f"launcher={launcher}", *extra), basic)


@pytest.mark.slow
def test_ray_local_cluster_matches_basic(basic, run_app, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    proc = run_app("-m", "distill=none,kd", "seed=0", *FAST, "launcher=ray", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = collect(tmp_path)
    assert list(got.runs.columns) == list(basic.runs.columns)
    want = basic.runs[basic.runs["seed"] == 0]
    assert sorted(got.runs[KEYS].to_dict("records"), key=str) == sorted(want[KEYS].to_dict("records"), key=str)


def test_missing_launcher_extra_is_one_line_exit_2(bench_home):
    """The plugin hidden from the import system, as when the extra is not installed."""
    code = ("import sys; sys.modules['hydra_plugins.hydra_ray_launcher'] = None\n"
            "from entrenar_bench.cli.main import main\n"
            "main(['compare', '--strategies', 'kd', '--runs', '1', '--', 'launcher=ray'])")
    sweeps = bench_home / "outputs" / "compare"
    before = set(sweeps.iterdir()) if sweeps.exists() else set()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=bench_home, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "launcher=ray" in lines[0] and "entrenar-bench[ray]" in lines[0], proc.stderr
    assert (set(sweeps.iterdir()) if sweeps.exists() else set()) == before  # nothing ran


def test_launcher_resolvers():
    assert joblib_workers(3, 4, "gpu") == 3
    assert joblib_workers(None, 4, "cpu") == usable_cores()
    assert joblib_workers(None, 4, "gpu") == (4 * torch.cuda.device_count() or usable_cores())
    assert gpu_share(4, "gpu") == 0.25 and gpu_share(4, "cpu") == 0.0
    assert one_gpu("gpu") == 1 and one_gpu("cpu") is None


def test_threads_do_not_oversubscribe(compose_cfg):
    cores = usable_cores()
    cfg = compose_cfg("launcher=joblib", "launcher.n_jobs=2", "threads=null")
    assert parallel_jobs(cfg) == 2
    place_job(cfg)
    assert torch.get_num_threads() == max(1, cores // 2)
    cfg = compose_cfg("launcher=ray", "launcher.num_cpus=1", "threads=null")
    assert parallel_jobs(cfg) == cores
    place_job(cfg)
    assert torch.get_num_threads() == 1
    place_job(compose_cfg("threads=1"))
    assert torch.get_num_threads() == 1


def test_launcher_configs_set_the_plugin(compose_cfg):
    """Each launcher config is a delta over Hydra's plugin config, driven by the ``launcher`` node."""

    def hydra_launcher(*overrides):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=list(overrides), return_hydra_config=True).hydra.launcher

    assert hydra_launcher()._target_.endswith("BasicLauncher")
    assert hydra_launcher("launcher=joblib", "launcher.n_jobs=3").n_jobs == 3
    assert hydra_launcher("launcher=submitit_local").cpus_per_task == 1
    slurm = hydra_launcher("launcher=submitit_slurm", "trainer=gpu", "launcher.partition=gpu")
    assert slurm._target_.endswith("SlurmLauncher") and slurm.partition == "gpu" and slurm.gpus_per_node == 1
    ray = hydra_launcher("launcher=ray", "trainer=gpu", "launcher.jobs_per_gpu=4", "launcher.address=head:6379")
    assert ray.ray.remote.num_gpus == 0.25 and ray.ray.init.address == "head:6379"
    GlobalHydra.instance().clear()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_joblib_jobs_share_gpus_round_robin(compose_cfg, monkeypatch):
    from entrenar_bench.run import placement

    count = torch.cuda.device_count()
    for num in range(2 * count):
        monkeypatch.setattr(placement, "job_number", lambda num=num: num)
        placed = place_job(compose_cfg("trainer=gpu", "launcher=joblib", "launcher.jobs_per_gpu=2"))
        assert list(placed.trainer.devices) == [num % count]
        assert torch.cuda.max_memory_allocated(num % count) == 0
