"""Property-based: sweep directories damaged in every way Hypothesis can think of (records of any JSON
type or none, NaN/inf/strings where numbers belong, random bytes, links and loops, FIFOs, a killed sweep
with no job directory, a hostile multirun.yaml). Every reader survives: no exception but the documented
ones, each damaged run listed once with its reason, the good runs still reported, the documented exit code."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from entrenar_bench.aggregate.collect import collect
from entrenar_bench.aggregate.report import generic_report
from entrenar_bench.cli.main import COMMAND_MODULES, run_cli
from entrenar_bench.cost.points import points_from_sweep
from entrenar_bench.run.record import CorruptRecord, read_result
from entrenar_bench.sweep.launch import sweep_statuses

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
FIELDS = ["status", "seed", "metrics", "metrics.accuracy", "metrics.loss", "time_s", "peak_memory_gb", "config",
          "overrides", "error", "device", "teacher", "config.teacher"]
BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))

damage = st.one_of(
    st.tuples(st.just("json"), json_values),
    st.tuples(st.just("bytes"), st.binary(max_size=64)),
    st.tuples(st.just("field"), st.tuples(st.sampled_from(FIELDS), json_values)),
    st.tuples(st.just("special"), st.sampled_from(["dir", "fifo", "loop", "dangling", "to_good", "devzero",
                                                   "no_record", "overrides_bytes", "overrides_bomb",
                                                   "metrics_csv", "teacher_fifo"])),
)
multirun = st.one_of(
    st.none(),
    st.binary(max_size=80),
    st.just(BOMB),
    st.builds(lambda task, params: json.dumps({"task_name": "compare", "hydra": {
        "sweeper": {"params": params}, "overrides": {"task": task, "hydra": []}}}),
        st.lists(st.sampled_from(["seed=range(0,1000000000000)", "seed=0,1", "distill=kd,none", "x=glob(*)",
                                  "seed=range(0,10,0)", "a=interval(0,1)", "=", "~", "seed=${oc.env:HOME}"]),
                 max_size=3),
        st.dictionaries(st.sampled_from(["seed", "distill"]), st.sampled_from(["0,1", "range(0,99999999)", "kd"]),
                        max_size=2)),
)


def good_record(seed: int, accuracy: float, name: str) -> dict:
    return {"status": "completed", "seed": seed, "time_s": 1.0 + seed, "peak_memory_gb": 0.01, "device": "cpu: t",
            "metrics": {"accuracy": accuracy, "loss": 1 - accuracy, "val_accuracy": accuracy, "val_loss": 0.2},
            "config": {"seed": seed, "distill": {"name": name}, "configuration": name},
            "overrides": [f"distill={name}", f"seed={seed}"]}


def set_field(record: dict, dotted: str, value) -> dict:
    node = record
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {}) if isinstance(node.get(part), dict) or part not in node else {}
    node[last] = value
    return record


def write_job(job: Path, kind: str, value, good: dict) -> None:
    job.mkdir()
    (job / ".hydra").mkdir()
    (job / ".hydra" / "overrides.yaml").write_text(f"- distill=broken\n- seed={job.name}\n")
    result = job / "result.json"
    if kind == "json":
        result.write_text(json.dumps(value))
    elif kind == "bytes":
        result.write_bytes(value)
    elif kind == "field":
        result.write_text(json.dumps(set_field(json.loads(json.dumps(good)), *value)))
    elif value == "dir":
        result.mkdir()
    elif value == "fifo":
        os.mkfifo(result)
    elif value == "loop":
        result.symlink_to(result)
    elif value == "dangling":
        result.symlink_to(job / "nowhere")
    elif value == "to_good":
        result.symlink_to(job.parent / "0" / "result.json")
    elif value == "devzero":
        result.symlink_to("/dev/zero")
    elif value == "overrides_bytes":
        (job / ".hydra" / "overrides.yaml").write_bytes(b"\xff\xfe- [\x00")
    elif value == "overrides_bomb":
        (job / ".hydra" / "overrides.yaml").write_text(BOMB)
    elif value == "metrics_csv":  # a good record with unreadable learning curves
        result.write_text(json.dumps(good))
        (job / "metrics.csv").write_bytes(b"epoch,val/accuracy\nx,\xff\n1,abc\n")
    elif value == "teacher_fifo":  # a good record whose teacher record is a FIFO
        os.mkfifo(job / "teacher.json")
        result.write_text(json.dumps({**good, "teacher": {"cache": str(job)}}))


def write_multirun(root: Path, text) -> None:
    if text is not None:
        (root / "multirun.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())


def run_aggregate(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_cli(["aggregate", *argv], "entrenar-bench", COMMAND_MODULES)
    return code, out.getvalue(), err.getvalue()


def build(root: Path, accuracies: list[float], damages: list, multirun_text, loops: bool) -> list[str]:
    """Good runs 0..n-1, then one job per damage; returns the names of the damaged jobs."""
    for seed, accuracy in enumerate(accuracies):
        job = root / str(seed)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- distill=kd\n- seed={seed}\n")
        (job / "result.json").write_text(json.dumps(good_record(seed, accuracy, "kd")))
    names = []
    for i, (kind, value) in enumerate(damages, start=len(accuracies)):
        write_job(root / str(i), kind, value, good_record(i, 0.5, "kd"))
        names.append(str(i))
    write_multirun(root, multirun_text)
    if loops:
        (root / "loop").symlink_to(root)
        (root / "elsewhere").symlink_to("/")
        (root / "stray.txt").write_bytes(b"\x00\x01")
    return names


sweeps = st.tuples(
    st.lists(st.floats(0.5, 1.0), min_size=1, max_size=4),
    st.lists(damage, max_size=4),
    multirun,
    st.booleans(),
)


@contextlib.contextmanager
def damaged_sweep(sweep):
    """The drawn sweep written to a temporary folder: (folder, good accuracies, damaged job names)."""
    accuracies, damages, multirun_text, loops = sweep
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp), accuracies, build(Path(tmp), accuracies, damages, multirun_text, loops)


@FAST
@given(sweeps)
def test_collect_and_report_survive_any_damage(sweep):
    with damaged_sweep(sweep) as (root, accuracies, damaged):
        collection = collect(root)
        good = [r for r in collection.runs.to_dict("records") if r["job"] in {str(i) for i in range(len(accuracies))}]
        assert [r["status"] for r in good] == ["completed"] * len(accuracies)  # the good runs, still reported
        assert sorted(r["accuracy"] for r in good) == sorted(accuracies)
        jobs = collection.runs["job"].dropna().tolist()
        for name in damaged:  # each damaged job at most once, and if not used, with its reason
            assert jobs.count(name) <= 1
            rows = collection.runs[collection.runs["job"] == name].to_dict("records")
            assert all(r["status"] == "completed" or r["error"] for r in rows)
        document, text = generic_report(collection)
        assert document["completed"] >= len(accuracies) and "Traceback" not in text
        for name in damaged:
            try:
                record = read_result(root / name)
            except CorruptRecord:
                continue
            assert record is None or record["status"] in ("completed", "failed")
        statuses = sweep_statuses(root)
        assert all(statuses[str(i)][0] == "completed" for i in range(len(accuracies)))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sweeps)
def test_aggregate_command_prints_the_good_runs_and_exits_0(sweep):
    with damaged_sweep(sweep) as (root, accuracies, _):
        code, out, err = run_aggregate(str(root), "--format", "json")
        assert code == 0, err
        assert "Traceback" not in err and "internal error" not in err
        assert json.loads(out)["completed"] >= len(accuracies)


@FAST
@given(sweeps)
def test_cost_points_survive_any_damage(sweep):
    with damaged_sweep(sweep) as (root, accuracies, _):
        points, _ = points_from_sweep(root)
        kd = next(p for p in points if p.name == "kd")
        assert len(kd.accuracies) >= len(accuracies)


@FAST
@given(multirun)
@example(json.dumps({"task_name": "compare", "hydra": {"sweeper": {"params": {"seed": "range(0,99999999)"}},
                                                       "overrides": {"task": ["seed=0,1"], "hydra": []}}}))
def test_a_sweep_killed_before_its_first_job_is_reported_not_crashed(multirun_text):
    """Only multirun.yaml (or nothing readable): exit 1 (no run completed) or 2 (not a sweep), one line."""
    with tempfile.TemporaryDirectory() as tmp:
        write_multirun(Path(tmp), multirun_text)
        code, _, err = run_aggregate(tmp)
        assert code in (1, 2)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
