"""Recovery of the gap to the teacher, in either direction of the metric."""

import pytest

from entrenar_bench.run.recovery import recovery, run_recovery


@pytest.mark.parametrize("before,after,teacher,expected", [
    (6.0, 4.0, 2.0, 0.5),      # a loss: lower is better
    (0.2, 0.8, 0.9, 6 / 7),    # an accuracy: higher is better
    (6.0, 7.0, 2.0, -0.25),    # worse than its start
    (6.0, 1.0, 2.0, 1.25),     # better than the teacher
])
def test_recovery_in_the_metrics_direction(before, after, teacher, expected):
    assert recovery(before, after, teacher) == pytest.approx(expected)


def test_recovery_is_undefined_without_a_gap_or_a_value():
    assert recovery(2.0, 1.0, 2.0) is None and recovery(None, 1.0, 2.0) is None
    assert recovery(float("nan"), 1.0, 2.0) is None


def test_a_run_without_a_teacher_records_no_recovery():
    fields = run_recovery({"loss": 5.0}, {"loss": 4.0}, None, "loss")
    assert fields["recovery"] is None and fields["recovery_of"]["before"] == 5.0
    assert run_recovery({"loss": 5.0}, {"loss": 4.0}, {"loss": 3.0}, "loss")["recovery"] == pytest.approx(0.5)
