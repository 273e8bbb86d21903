"""The ceiling line: from the runs that recorded the source's Bayes-optimal accuracy, none without one."""

import json

from entrenar_bench.aggregate.ceiling import ceiling, ceiling_line
from entrenar_bench.aggregate.collect import collect


def _job(sweep, number, metrics, teacher=None):
    job = sweep / str(number)
    job.mkdir(parents=True)
    (job / "result.json").write_text(json.dumps({
        "status": "completed", "seed": number, "metrics": {"accuracy": 0.4, "loss": 1.8, **metrics},
        "time_s": 1.0, "peak_memory_gb": 0.0, "device": "cpu", "teacher": teacher,
        "config": {"seed": number, "distill": {"name": "kd" if teacher else "none"}}}))


def test_the_ceiling_and_the_teacher_from_the_runs(tmp_path):
    _job(tmp_path, 0, {"bayes_accuracy": 0.515})  # a run without a teacher
    _job(tmp_path, 1, {"bayes_accuracy": 0.515}, {"accuracy": 0.507, "metrics": {"truth_kl": 0.11}})
    info = ceiling(collect(tmp_path))
    assert info == {"bayes_accuracy": 0.515, "teacher_accuracy": 0.507, "teacher_truth_kl": 0.11}
    assert ceiling_line(info) == ["Ceiling (Bayes-optimal accuracy of the source): 0.515; teacher: 0.507 "
                                  "(KL to the truth 0.110 nats/token)"]


def test_no_ceiling_where_the_truth_is_unknown(tmp_path):
    _job(tmp_path, 0, {}, {"accuracy": 0.9, "metrics": {}})
    assert ceiling(collect(tmp_path)) is None and ceiling_line(None) == []
