"""The sweep bar's time remaining is filled once one run has finished, from this launch's pace (runs a resumed
sweep found done do not count), however long a run takes."""

from rich.progress import Progress

from entrenar_bench.sweep.progress import RESUMED, UNKNOWN, RunsRemainingColumn


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _bar(total, resumed=0):
    clock = Clock()
    bar = Progress(RunsRemainingColumn(), get_time=clock, disable=True)
    task = bar.add_task("compare", total=total, **{RESUMED: resumed})
    return bar, task, clock


def _eta(bar, task):
    return RunsRemainingColumn().render(bar.tasks[task]).plain


def test_the_eta_is_filled_once_a_run_has_finished_even_when_runs_take_minutes():
    bar, task, clock = _bar(total=6)
    bar.start_task(task)
    assert _eta(bar, task) == UNKNOWN
    clock.now = 95.0                                  # one run of 95 s: rich's own estimate needs two within 30 s
    bar.update(task, completed=1)
    assert _eta(bar, task) == "0:07:55"               # 5 runs left at 95 s each
    clock.now = 200.0
    bar.update(task, completed=2)
    assert _eta(bar, task) == "0:06:40"               # 4 left at 100 s each
    bar.update(task, completed=6)
    assert _eta(bar, task) == "0:00:00"


def test_runs_a_resumed_sweep_found_done_do_not_set_the_pace():
    bar, task, clock = _bar(total=10, resumed=4)
    bar.start_task(task)
    clock.now = 1.0
    bar.update(task, completed=4)                    # the first poll finds the 4 done before: no pace yet
    assert _eta(bar, task) == UNKNOWN
    clock.now = 60.0
    bar.update(task, completed=5)
    assert _eta(bar, task) == "0:05:00"              # 5 left at 60 s each
