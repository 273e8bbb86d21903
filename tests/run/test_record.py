"""The run record read back from disk: any bytes give a record, nothing, or CorruptRecord saying why;
a corrupt record is rerun by resume, never a crash on every resume."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FAST
from entrenar_bench.run.app import run
from entrenar_bench.run.record import CorruptRecord, read_result, record_problem

GOOD = {"status": "completed", "seed": 0, "metrics": {"accuracy": 0.9, "loss": 0.3}, "time_s": 1.0,
        "peak_memory_gb": 0.1, "config": {}}


@pytest.mark.parametrize("change, reason", [
    ({"metrics": {"accuracy": float("nan"), "loss": 0.3}}, "'metrics.accuracy' is not a finite number"),
    ({"metrics": {"accuracy": "0.9", "loss": 0.3}}, "'metrics.accuracy' is not a finite number"),
    ({"metrics": {"accuracy": 1.5, "loss": 0.3}}, "not between 0 and 1"),
    ({"time_s": float("inf")}, "'time_s' is not a finite number"),
    ({"time_s": 10 ** 400}, "'time_s' is not a finite number"),
    ({"seed": True}, "'seed' is not a non-negative integer"),
    ({"seed": -1}, "'seed' is not a non-negative integer"),
    ({"config": [1]}, "'config' is not a mapping"),
    ({"status": "done"}, "no 'status'"),
    ({"metrics": None}, "'metrics.accuracy' is not a finite number"),
])
def test_a_record_with_the_wrong_kind_of_value_says_why(change, reason):
    assert reason in record_problem({**GOOD, **change})
    assert record_problem(GOOD) is None and record_problem([GOOD]) == "not a run record (a JSON list)"


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=100) | st.builds(lambda v: json.dumps(v).encode(), st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["status", "seed", "metrics", "accuracy", "loss", "time_s", "config"]), inner, max_size=4), max_leaves=12)))
def test_any_bytes_read_as_a_record_nothing_or_corrupt(data):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "result.json").write_bytes(data)
        try:
            record = read_result(Path(tmp))
        except CorruptRecord as e:
            assert str(e).startswith(str(Path(tmp) / "result.json"))
            return
        assert record_problem(record) is None


def test_a_record_of_random_bytes_is_rerun(compose_cfg, tmp_path):
    (tmp_path / "result.json").write_bytes(b"\x89\xff\x00garbage\xfe")
    record = run(compose_cfg("distill=none", *FAST), tmp_path)
    assert record["status"] == "completed" and read_result(tmp_path) == json.loads(json.dumps(record))


def test_a_record_that_cannot_be_written_fails_the_run_in_one_line(compose_cfg, tmp_path, monkeypatch):
    """A full disk as the record is written: the run fails with one line naming the file, nothing partial."""
    import errno

    from entrenar_bench.errors import OutputError
    from entrenar_bench.run import app

    def full(run_dir, record):
        raise OutputError(errno.ENOSPC, "No space left on device", str(run_dir / "result.json"))

    monkeypatch.setattr(app, "write_result", full)
    with pytest.raises(app.RunFailed, match="cannot write .*result.json: No space left on device"):
        run(compose_cfg("distill=none", *FAST), tmp_path)
    assert not (tmp_path / "result.json").exists()
