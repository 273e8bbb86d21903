"""``--teachers K``: K teacher seeds crossed with the student seeds, planned after them."""

import pytest

from entrenar_bench.errors import UsageError
from entrenar_bench.sweep import plan
from entrenar_bench.sweep.commands import sweep_command


def test_one_teacher_plans_nothing_and_k_teachers_cross_the_seeds(bench_home):
    from entrenar_bench.sweep.compose import expand_jobs

    assert plan.compare_overrides(["kd", "none"], 3) == ["seed=0,1,2", "distill=kd,none"]
    planned = plan.compare_overrides(["kd", "none"], 3, teachers=2)
    assert planned == ["seed=0,1,2", "teacher.seed=0,1", "distill=kd,none"]
    jobs, _ = expand_jobs(["+bench=compare", *planned])
    pairs = {(next(o for o in j if o.startswith("seed=")), next(o for o in j if o.startswith("teacher.seed=")))
             for j in jobs}
    assert len(jobs) == 12 and len(pairs) == 6
    assert sweep_command("temperature").plan({"start": 1, "end": 2, "step": 1}, 2, teachers=3)[1] == \
        "teacher.seed=0,1,2"
    assert plan.ablation_overrides(["temperature"], 1, teachers=2)[1] == "teacher.seed=0,1"


def test_teachers_must_be_positive():
    with pytest.raises(UsageError, match="--teachers"):
        plan.teacher_overrides(0)
