"""One run as a Hydra app: configs, run records, resume, failures, teacher cache, determinism."""

import json
import os
import subprocess
import sys

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from conftest import CONF_DIR, FAST, read_results
from entrenar_bench.distill.module import DistillationModule
from entrenar_bench.distill.objective import DistillationObjective
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.run.model_cache import load_teacher
from entrenar_bench.run.record import CorruptRecord, read_result, write_json_atomic, write_result
from entrenar_bench.run.app import RunFailed, run
from entrenar_bench.errors import ConfigError

STRATEGIES = ["none", "kd", "progressive", "attention", "mse", "combined"]
ROOT_GROUPS = ["data", "teacher", "student", "distill", "trainer"]


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ROOT_GROUPS + ["bench"])
def test_every_config_option_composes_and_validates(compose_cfg, group):
    from entrenar_bench.run.checks import validate_config

    for option in _options(group):
        prefix = "+" if group == "bench" else ""
        cfg = compose_cfg(f"{prefix}{group}={option}")
        if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
            with pytest.raises(ConfigError, match="needs a CUDA GPU"):  # refused before anything runs
                validate_config(cfg)
            continue
        if group == "student" and option == "from_teacher":  # its layers come from a pretrained teacher
            with pytest.raises(ConfigError, match="needs a pretrained teacher"):
                validate_config(cfg)
            continue
        if group == "data" and "student_widths" in cfg.data:  # two tokenizations: kd's kl refused, uld/gold apply
            with pytest.raises(ConfigError, match="use distill.logit_loss=uld or gold"):
                validate_config(cfg)
            validate_config(compose_cfg(f"{group}={option}", "distill.logit_loss=uld"))
            continue
        if any(key.startswith("data.") for key in OmegaConf.missing_keys(cfg)):  # e.g. data=corpus without a path
            with pytest.raises(ConfigError, match="is not set"):
                validate_config(cfg)
            continue
        validate_config(cfg)
        assert cfg.seed == 0


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_strategy_completes_and_records(compose_cfg, tmp_path, strategy):
    record = run(compose_cfg(f"distill={strategy}", *FAST), tmp_path)
    on_disk = read_result(tmp_path)
    assert on_disk == json.loads(json.dumps(record))
    assert record["status"] == "completed"
    assert 0.0 <= record["metrics"]["accuracy"] <= 1.0 and record["metrics"]["loss"] > 0
    assert record["time_s"] > 0 and record["samples_per_s"] > 0 and record["peak_memory_gb"] >= 0
    assert record["peak_memory_kind"] == "cpu_rss_growth" and record["device"].startswith("cpu")
    assert record["params"]["student"] > 0 and record["distill"]["name"] == strategy
    assert (record["params"]["teacher"] is None) == (strategy == "none")
    assert (record["params"]["projections"] > 0) == (strategy in ("progressive", "combined"))


def test_same_config_and_seed_give_same_accuracy(compose_cfg, tmp_path):
    a = run(compose_cfg("distill=kd", "seed=3", *FAST), tmp_path / "a")
    b = run(compose_cfg("distill=kd", "seed=3", *FAST), tmp_path / "b")
    assert a["metrics"] == b["metrics"]


def test_completed_run_is_skipped_and_failed_run_is_rerun(compose_cfg, tmp_path):
    cfg = compose_cfg("distill=none", *FAST)
    first = run(cfg, tmp_path)
    assert run(cfg, tmp_path)["started_at"] == first["started_at"]  # found again: not retrained
    write_result(tmp_path, {**first, "status": "failed", "error": "killed"})
    again = run(cfg, tmp_path)
    assert again["status"] == "completed" and again["started_at"] != first["started_at"]


def test_completed_run_of_another_config_is_not_overwritten(compose_cfg, tmp_path):
    run(compose_cfg("distill=none", *FAST), tmp_path)
    before = (tmp_path / "result.json").read_text()
    with pytest.raises(ConfigError, match="another configuration"):
        run(compose_cfg("distill=none", "seed=1", *FAST), tmp_path)
    assert (tmp_path / "result.json").read_text() == before


def test_diverging_run_is_recorded_as_failed(compose_cfg, tmp_path):
    with pytest.raises(RunFailed, match="NonFiniteLoss"):
        run(compose_cfg("distill=none", "train.lr=1e30", *FAST), tmp_path)
    record = read_result(tmp_path)
    assert record["status"] == "failed" and "NonFiniteLoss" in record["error"]


def test_raising_run_is_recorded_as_failed(compose_cfg, tmp_path, monkeypatch):
    from entrenar_bench.run import job

    def broken(*args):
        raise RuntimeError("out of luck")

    monkeypatch.setattr(job, "train_student", broken)
    with pytest.raises(RunFailed, match="out of luck"):
        run(compose_cfg("distill=none", *FAST), tmp_path)
    assert read_result(tmp_path)["status"] == "failed"


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "result.json"
    write_json_atomic(path, {"status": "completed"})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"status": object()})  # not serialisable: fails mid-write
    assert json.loads(path.read_text()) == {"status": "completed"}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temp file left behind


def test_corrupt_record_is_reported(tmp_path):
    (tmp_path / "result.json").write_text('{"status": "compl')
    with pytest.raises(CorruptRecord, match="not valid JSON"):
        read_result(tmp_path)


def test_teacher_key_resolves_interpolations_into_the_whole_config(compose_cfg, tmp_path):
    from entrenar_bench.run.model_cache import model_key as teacher_key

    large = compose_cfg("data=mnist1d_large", f"paths.cache_dir={tmp_path}")
    assert large.data.cache_dir == str(tmp_path)  # ${paths.cache_dir}, resolved in the full config
    key = teacher_key(large.teacher, large.data)
    assert key == teacher_key(compose_cfg("data=mnist1d_large", f"paths.cache_dir={tmp_path}").teacher, large.data)
    assert key != teacher_key(large.teacher, compose_cfg("data=mnist1d_large", "data.num_samples=100").data)


def test_teacher_is_cached_frozen_and_lines_up_with_batches(compose_cfg, tmp_path, monkeypatch):
    cfg = compose_cfg("distill=kd", *FAST, f"paths.cache_dir={tmp_path}")
    from hydra.utils import instantiate

    from entrenar_bench.run import model_cache as teacher_mod
    from entrenar_bench.tasks import task_for
    from entrenar_bench.teacher_signal.plan import TeacherPlan

    dm = instantiate(cfg.data)
    dm.setup()
    task = task_for(dm)
    teacher, directory = load_teacher(cfg, task)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    stamp = (directory / "teacher.pt").stat().st_mtime_ns
    monkeypatch.setattr(teacher_mod, "_train", lambda *a: pytest.fail("teacher retrained"))
    again, same_dir = load_teacher(cfg, task)
    assert same_dir == directory and (directory / "teacher.pt").stat().st_mtime_ns == stamp
    # stored teacher logits are those of the exact batch the student sees
    student = teacher_mod.build_model(cfg.student.model, dm)
    plan = TeacherPlan.make(cfg, DistillSettings(), task, augmented=False)
    assert plan.stored(directory) == {"train": False}
    signal = plan.build(task, again, directory, torch.device("cpu"))
    assert plan.record() == {"mode": "cached", "form": "exact"} and set(signal) == {"train"}
    assert plan.stored(directory) == {"train": True}
    module = DistillationModule(task, student, DistillationObjective(DistillSettings()), None, signal)
    module.on_fit_start()
    batch = task.batch(next(iter(task.train_loader(indexed=True))))
    with torch.no_grad():
        assert torch.allclose(module.teacher_on("train", batch).logits, again(batch.inputs), atol=1e-5)
    module = DistillationModule(task, student, DistillationObjective(DistillSettings()), again)
    module.train()
    assert not module.teacher.training  # Lightning's train() never unfreezes the teacher


def test_held_teacher_outputs_are_the_teachers_own(compose_cfg, tmp_path, monkeypatch):
    """Read once and held (a small store; the teacher's hidden states over the training rows), the teacher's
    outputs per batch are those of reading the store per batch, or running the teacher on the batch."""
    from hydra.utils import instantiate

    from entrenar_bench.distill import module as module_mod
    from entrenar_bench.run import model_cache as teacher_mod
    from entrenar_bench.run.job import prepared_objective
    from entrenar_bench.tasks import task_for
    from entrenar_bench.teacher_signal.plan import TeacherPlan

    cfg = compose_cfg("distill=kd", *FAST, f"paths.cache_dir={tmp_path}")
    dm = instantiate(cfg.data)
    dm.setup()
    task = task_for(dm)
    teacher, directory = load_teacher(cfg, task)
    student = teacher_mod.build_model(cfg.student.model, dm)
    batch = task.batch(next(iter(task.train_loader(indexed=True))))
    signal = TeacherPlan.make(cfg, DistillSettings(), task, augmented=False).build(task, teacher, directory,
                                                                                   torch.device("cpu"))
    held = DistillationModule(task, student, DistillationObjective(DistillSettings()), None, signal)
    monkeypatch.setattr(module_mod, "HELD_STORE_BYTES", 0)
    per_batch = DistillationModule(task, student, DistillationObjective(DistillSettings()), None, signal)
    assert torch.equal(held.teacher_on("train", batch).logits, per_batch.teacher_on("train", batch).logits)
    assert set(held._held) == {"train"} and per_batch._held["train"][1] is None
    assert held.reads_train_rows and held.train_targets == 0

    settings = DistillSettings(name="combined", layer_weight=0.3, attention_weight=0.1)

    def module(settings, augment=None):
        return DistillationModule(task, student, prepared_objective(settings, task, student, teacher), teacher,
                                  augment=augment)
    features = module(settings)
    assert features.holds_teacher_features and features.reads_train_rows
    held, online = features.teacher_on("train", batch, True), task.forward(teacher, batch.inputs, True)
    assert torch.allclose(held.logits, online.logits, atol=1e-5) and len(held.hidden) == len(online.hidden) > 0
    assert all(torch.allclose(h, o, atol=1e-5) for h, o in zip(held.hidden, online.hidden))
    assert not module(DistillSettings(name="combined", layer_weight=0.3,
                                      teacher_outputs="online")).holds_teacher_features
    assert not module(settings, augment=lambda x: x).holds_teacher_features
    monkeypatch.setattr(module_mod, "HELD_FEATURE_BYTES", 1000)
    assert not module(settings).holds_teacher_features  # too large to hold: the teacher runs on every batch


def test_parallel_jobs_train_the_teacher_once(bench_home, tmp_path):
    env = {**os.environ, "ENTRENAR_BENCH_HOME": str(bench_home), "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "entrenar_bench.run", "distill=kd", *FAST, "teacher.seed=7",
           f"paths.cache_dir={tmp_path / 'cache'}"]
    procs = [subprocess.Popen([*cmd, f"hydra.run.dir={tmp_path / str(i)}"], stderr=subprocess.PIPE, text=True, env=env)
             for i in range(2)]
    logs = [p.communicate(timeout=600)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), logs
    assert sum(log.count("training teacher") for log in logs) == 1


@pytest.mark.parametrize("override, message", [
    ("distill=unknown", "Could not find 'distill/unknown'"),
    ("distill.temperature=-1", "distill.temperature must be > 0"),
    ("distill.alpha=1.5", "distill.alpha must be between 0 and 1"),
    ("seed=abc", "seed must be an integer"),
])
def test_bad_override_fails_fast_without_traceback(run_app, tmp_path, override, message):
    result = run_app(override, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "training teacher" not in result.stderr and not (tmp_path / "run" / "result.json").exists()


def test_small_multirun_in_subprocess_and_rerun_trains_nothing(run_app, tmp_path):
    args = ["-m", "distill=none,kd", "seed=0,1", *FAST, f"hydra.sweep.dir={tmp_path}"]
    first = run_app(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    records = read_results(tmp_path)
    assert len(records) == 4 and all(r["status"] == "completed" for r in records)
    assert sorted((r["distill"]["name"], r["seed"]) for r in records) == [("kd", 0), ("kd", 1),
                                                                          ("none", 0), ("none", 1)]
    second = run_app(*args)
    assert second.returncode == 0 and second.stderr.count("skipped") == 4
    assert [r["started_at"] for r in read_results(tmp_path)] == [r["started_at"] for r in records]


def test_mnist1d_is_generated_offline(compose_cfg, tmp_path):
    record = run(compose_cfg("data=mnist1d", "data.num_samples=600", "distill=kd", *FAST), tmp_path)
    assert record["status"] == "completed"
    GlobalHydra.instance().clear()


def test_resume_ignores_where_and_how_fast_a_job_ran(compose_cfg, tmp_path):
    first = run(compose_cfg("distill=none", "threads=1", *FAST), tmp_path)
    again = run(compose_cfg("distill=none", "threads=2", "launcher=joblib", *FAST), tmp_path)
    assert again["started_at"] == first["started_at"]


def test_a_top_k_teacher_store_serves_the_image_task_too(compose_cfg, tmp_path):
    record = run(compose_cfg("distill=kd", *FAST, "distill.teacher_top_k=3", "distill.temperature=1"), tmp_path)
    assert record["status"] == "completed"
    assert record["teacher_signal"] == {"mode": "cached", "form": "top3", "tail": "bucket"}
