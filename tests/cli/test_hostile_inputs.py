"""What a hostile user can type or leave on disk: every case ends in one line on stderr (never a
traceback), the documented exit code, nothing trained, and no file the input asked for created.

Exit codes (docs/commands.md): 0 report printed; 1 no run completed or verification failed; 2 bad input or an
output that cannot be written.
"""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest

from entrenar_bench.cli.main import COMMAND_MODULES
from entrenar_bench.cli.main import run_cli as cli
from entrenar_bench.sweep.supervise import PLAN_FILE

BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))
PWNED = "pwned-by-i12"  # the file a crafted config asks builtins.open to create
UNWRITABLE = "/proc/entrenar-i12/out"  # unwritable even for root


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.fixture
def place(tmp_path) -> Path:
    """Files for the cases: an alias bomb, a recorded compare sweep, crafted sweeps, a verified bundle."""
    (tmp_path / "bomb.yaml").write_text(BOMB)
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / PLAN_FILE).write_text(json.dumps({"task_name": "compare", "overrides": [
        "+bench=compare", "seed=0,1", "distill=kd,none", "train.epochs=2"]}))
    evil = tmp_path / "evil"
    (evil / "conf" / "data").mkdir(parents=True)
    (evil / "conf" / "data" / "evil.yaml").write_text(
        f"_target_: builtins.open\nfile: {tmp_path / PWNED}\nmode: w\n")
    for name, overrides in {
        "searchpath": [f"hydra.searchpath=[file://{evil / 'conf'}]", "+bench=compare", "data=evil"],
        "target": ["+bench=compare", "data._target_=builtins.open", f"+data.file={tmp_path / PWNED}"],
        "launcher": ["+bench=compare", "hydra/launcher=basic"],
        "resolver": ["+bench=compare", "+x=${oc.decode:y}"],
        "group": ["+bench=compare", "student=../../../etc/passwd"],
    }.items():
        (tmp_path / name).mkdir()
        task = [o for o in overrides if not o.startswith("hydra")]
        hydra = [o for o in overrides if o.startswith("hydra")]
        (tmp_path / name / "multirun.yaml").write_text(json.dumps(
            {"task_name": "compare", "hydra": {"overrides": {"task": task, "hydra": hydra}}}))
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "multirun.yaml").write_bytes(b"\x00\xff{[" * 10)
    (tmp_path / "plan-list").mkdir()
    (tmp_path / "plan-list" / PLAN_FILE).write_text("[1, 2]")
    killed = tmp_path / "killed"  # a sweep killed before its first job directory existed
    killed.mkdir()
    (killed / "multirun.yaml").write_text("task_name: compare\nhydra:\n  sweeper: {params: {}}\n  overrides:\n"
                                          "    task: ['distill=kd,none', 'seed=0,1']\n    hydra: []\n")
    with zipfile.ZipFile(tmp_path / "empty-manifest.zip", "w") as zf:
        zf.writestr("b/SHA256SUMS", "")
    return tmp_path


CASES = [
    # options: numbers that are not finite, sizes past the caps, options that would be ignored
    (["temperature", "--end", "inf"], 2, "finite"),
    (["temperature", "--end", "nan"], 2, "finite"),
    (["temperature", "--start", "nan"], 2, "finite"),
    (["temperature", "--step", "inf"], 2, "finite"),
    (["alpha", "--start=-inf"], 2, "finite"),
    (["compare", "--runs", "100000"], 2, "limits.max_runs"),
    (["compare", "--", "seed=range(0,100000000)"], 2, "limits.max_runs"),
    (["compare", "--runs", "4", "--", "limits.max_runs=5"], 2, "more than limits.max_runs=5"),
    (["compare", "--", "hydra.sweep.dir={tmp}/elsewhere"], 2, "would be ignored"),
    (["compare", "--", "hydra.run.dir={tmp}/elsewhere"], 2, "would be ignored"),
    (["compare", "--resume", "{tmp}/sweep", "--strategies", "mse", "--runs", "9"], 2,
     "--runs, --strategies would be ignored"),
    (["temperature", "--resume", "{tmp}/sweep", "--start", "2"], 2, "--start would be ignored"),
    (["compare", "--resume", "{tmp}/sweep", "--strat=mse"], 2, "--strategies would be ignored"),  # abbreviated
    (["compare", "--resume", "{tmp}/sweep", "--teachers", "2"], 2, "--teachers would be ignored"),
    (["compare", "--resume", "{tmp}/sweep", "--", "seed=5"], 2, "not one of its overrides"),
    (["recommend", "--from", "{tmp}/sweep", "--runs", "3"], 2, "--runs would be ignored"),
    (["cost-performance", "--from", "{tmp}/sweep", "--configs", "{tmp}/bomb.yaml"], 2, "--configs would be ignored"),
    # settings checked before the first job
    (["compare", "--", "data.batch_size=0"], 2, "data.batch_size must be >= 1"),
    (["compare", "--", "train.lr=nan"], 2, "train.lr must be a finite number"),
    (["compare", "--", "distill.temperature=inf"], 2, "must be a finite number"),
    (["compare", "--", "data.val_fraction=1.5"], 2, "data.val_fraction must be between 0 and 1"),
    (["compare", "--", "teacher.train.lr=-1"], 2, "teacher.train.lr must be > 0"),
    (["compare", "--", "trainer.precision=17"], 2, "trainer.precision must be one of"),
    (["compare", "--", "trainer.accelerator=quantum"], 2, "trainer.accelerator must be one of"),
    (["compare", "--", "trainer.devices=0"], 2, "trainer.devices must be a number of devices"),
    (["compare", "--", "threads=0"], 2, "threads must be >= 1"),
    (["compare", "--", "data.batch_size=1.5"], 2, "data.batch_size must be an integer"),
    (["compare", "--", "seed=${oc.env:ENTRENAR_I12_UNSET}"], 2, "ENTRENAR_I12_UNSET"),
    # YAML that explodes or is not YAML
    (["ablation", "--base", "{tmp}/bomb.yaml"], 2, "not valid YAML"),
    (["cost-performance", "--configs", "{tmp}/bomb.yaml"], 2, "not valid YAML"),
    (["ablation", "--base", "/dev/zero"], 2, "cannot read"),
    (["ablation", "--base", "{tmp}"], 2, "cannot read"),
    # run directories are data: crafted records refused, nothing instantiated
    (["compare", "--resume", "{tmp}/searchpath"], 2, "not planned by entrenar-bench"),
    (["compare", "--resume", "{tmp}/target"], 2, "_target_"),
    (["compare", "--resume", "{tmp}/launcher"], 2, "not planned by entrenar-bench"),
    (["compare", "--resume", "{tmp}/resolver"], 2, "not planned by entrenar-bench"),
    (["compare", "--resume", "{tmp}/group"], 2, "not planned by entrenar-bench"),
    (["compare", "--resume", "{tmp}/garbage"], 2, "unreadable multirun.yaml"),
    (["compare", "--resume", "{tmp}/plan-list"], 2, "not a sweep plan"),
    (["temperature", "--resume", "{tmp}/sweep"], 2, "a 'compare' sweep, not 'temperature'"),
    (["compare", "--resume", "{tmp}/nowhere"], 2, "no such directory"),
    # unwritable places
    (["compare", "--", f"paths.output_dir={UNWRITABLE}"], 2, f"cannot write {UNWRITABLE}/compare/"),
    (["cost-performance", "--", f"paths.output_dir={UNWRITABLE}"], 2, "/proc/entrenar-i12"),
    (["compare", "--resume", "/proc/self"], 2, "not a sweep directory"),
    (["research", "init", "--id", "x", "--title", "t", "--type", "dataset", "-o", f"{UNWRITABLE}/a.yaml"], 2,
     f"cannot write {UNWRITABLE}/a.yaml"),
    (["research", "verify", "{tmp}/empty-manifest.zip", "--extract", UNWRITABLE], 2, f"cannot write {UNWRITABLE}"),
    # damaged sweeps read by aggregate and --from
    (["aggregate", "{tmp}/killed"], 1, "no run completed"),
    (["aggregate", "{tmp}/bomb.yaml"], 2, "no such directory"),
    (["cost-performance", "--from", "{tmp}/killed"], 2, "no cost-performance runs"),
    (["recommend", "--from", "{tmp}/garbage"], 2, "no runs found"),
    # verification is strict
    (["research", "verify", "{tmp}/empty-manifest.zip"], 1, "SHA256SUMS lists no files"),
]


@pytest.mark.parametrize("argv, code, message", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_hostile_case_is_one_line_and_its_exit_code(bench_home, place, capsys, argv, code, message):
    before = sorted(p for p in (bench_home / "outputs").rglob("*") if "cache" not in p.parts) \
        if (bench_home / "outputs").exists() else []
    start = time.perf_counter()
    assert cli([a.replace("{tmp}", str(place)) for a in argv], "entrenar-bench", COMMAND_MODULES) == code
    assert time.perf_counter() - start < 30  # refused up front, nothing trained
    err = capsys.readouterr().err.strip()
    assert message in err, err
    assert "Traceback" not in err and "internal error" not in err and len(err.splitlines()) == 1, err
    after = sorted(p for p in (bench_home / "outputs").rglob("*") if "cache" not in p.parts) \
        if (bench_home / "outputs").exists() else []
    assert after == before  # no sweep directory left behind
    assert not (place / PWNED).exists() and not (place / "elsewhere").exists()


@pytest.mark.skipif("cuda()")
def test_a_gpu_trainer_without_cuda_is_refused_before_anything_runs(bench_home, capsys):
    assert cli(["compare", "--", "trainer=gpu"], "entrenar-bench", COMMAND_MODULES) == 2
    err = capsys.readouterr().err.strip()
    assert "needs a CUDA GPU" in err and len(err.splitlines()) == 1


def test_repeating_a_foreign_override_is_consent_but_it_still_reaches_no_code(bench_home, place, capsys,
                                                                               monkeypatch):
    """The user may allow a recorded override by typing it again; resume then reruns it (here stopped just
    before the child starts, to train nothing)."""
    from entrenar_bench.sweep import resume

    launched = {}

    def launch(task, overrides, sweep_dir, *args):
        launched["overrides"] = overrides
        return sweep_dir

    monkeypatch.setattr(resume, "launch_multirun", launch)
    repeated = f"hydra.searchpath=[file://{place / 'evil' / 'conf'}]"
    assert cli(["compare", "--resume", str(place / "searchpath"), "--", repeated], "entrenar-bench",
               COMMAND_MODULES) == 2  # data=evil is still foreign
    assert "data=evil" in capsys.readouterr().err and not launched
    assert cli(["compare", "--resume", str(place / "searchpath"), "--", repeated, "data=evil"], "entrenar-bench",
               COMMAND_MODULES) == 1  # allowed; the (stubbed) sweep ran nothing: no run completed
    assert launched["overrides"] == ["+bench=compare", "data=evil", repeated]
    assert not (place / PWNED).exists()


def test_a_bundle_into_an_unwritable_place_is_one_line(bench_home, tmp_path, capsys):
    from datetime import datetime, timezone

    from entrenar_bench.research.link import link_sweep

    artifact = tmp_path / "artifact.yaml"
    assert cli(["research", "init", "--id", "s", "--title", "t", "--type", "dataset", "-o", str(artifact)],
               "entrenar-bench", COMMAND_MODULES) == 0
    (tmp_path / "sweep" / "0").mkdir(parents=True)
    (tmp_path / "sweep" / "0" / "result.json").write_text("{}")
    link_sweep(artifact, tmp_path / "sweep", datetime.now(timezone.utc), ["test"])
    capsys.readouterr()
    assert cli(["research", "bundle", str(artifact), "--output", UNWRITABLE], "entrenar-bench", COMMAND_MODULES) == 2
    err = capsys.readouterr().err.strip()
    assert f"cannot write {UNWRITABLE}" in err and len(err.splitlines()) == 1


def test_a_full_disk_while_plotting_prints_the_report_then_one_line_exit_2(tmp_path, capsys, monkeypatch):
    """The disk fills as the plot is written: the report is still printed, no 0-byte PNG is left."""
    import errno

    from entrenar_bench import files

    for job, (name, accuracy) in enumerate([("kd", 0.9), ("kd", 0.92), ("none", 0.8), ("none", 0.82)]):
        (tmp_path / str(job)).mkdir()
        (tmp_path / str(job) / "result.json").write_text(json.dumps({
            "status": "completed", "seed": job % 2, "metrics": {"accuracy": accuracy, "loss": 0.3}, "time_s": 1.0,
            "peak_memory_gb": 0.01, "config": {"distill": {"name": name}}, "overrides": [f"distill={name}"]}))
    real = files.write_atomic

    def full(path, write):
        if str(path).endswith(".png"):
            return real(path, lambda f: (f.write(b"\x89PNG"), (_ for _ in ()).throw(
                OSError(errno.ENOSPC, "No space left on device"))))
        return real(path, write)

    monkeypatch.setattr("entrenar_bench.aggregate.plots.write_atomic", full)
    assert cli(["aggregate", str(tmp_path)], "entrenar-bench", COMMAND_MODULES) == 2
    out, err = capsys.readouterr()
    assert "Sweep Results" in out and "kd" in out
    assert "No space left on device" in err and ".png" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob(".*.tmp"))


def test_resuming_a_read_only_sweep_is_one_line_and_writes_nothing(place, capsys, monkeypatch):
    """A read-only mount (simulated: root writes through permission bits) refuses the sweep's lock file."""
    import errno
    import os

    from entrenar_bench import locks

    real = os.open

    def read_only(path, flags, *args):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and str(path).startswith(str(place / "sweep")):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, flags, *args)

    monkeypatch.setattr(locks.os, "open", read_only)
    before = sorted(p.name for p in (place / "sweep").iterdir())
    assert cli(["compare", "--resume", str(place / "sweep")], "entrenar-bench", COMMAND_MODULES) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot write there (Read-only file system)" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in (place / "sweep").iterdir()) == before


def test_an_unwritable_bench_home_is_one_line_before_anything_runs(bench_home, capsys, monkeypatch):
    monkeypatch.setenv("ENTRENAR_BENCH_HOME", UNWRITABLE)
    assert cli(["temperature", "--runs", "1"], "entrenar-bench", COMMAND_MODULES) == 2
    err = capsys.readouterr().err.strip()
    assert f"cannot write {UNWRITABLE}/outputs/temperature/" in err and len(err.splitlines()) == 1


def test_recommend_refuses_runs_when_it_reads_an_existing_sweep(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ENTRENAR_BENCH_HOME", str(tmp_path))
    sweep = tmp_path / "outputs" / "cost_performance" / "2026-01-01_00-00-00_000000"
    for job, (name, accuracy) in enumerate([("LoRA r=8", 0.9), ("Full", 0.95)]):
        (sweep / str(job)).mkdir(parents=True)
        (sweep / str(job) / "result.json").write_text(json.dumps({
            "status": "completed", "seed": 0, "metrics": {"accuracy": accuracy, "loss": 0.3}, "time_s": 60.0,
            "peak_memory_gb": 1.0, "config": {"configuration": name}}))
    assert cli(["recommend", "--runs", "3"], "entrenar-bench", COMMAND_MODULES) == 2
    err = capsys.readouterr().err.strip()
    assert f"reads the latest cost-performance sweep ({sweep})" in err and "--runs would be ignored" in err
