"""The sweep progress bar's time remaining, from the sweep's own pace.

rich's ``TimeRemainingColumn`` estimates a speed from the completions of its last 30 s and needs two of them, so
a sweep of runs that take a minute each shows ``-:--:--`` to its end. Here the estimate is the time so far over
the runs finished in this launch (those a resumed sweep found done do not count), times the runs left: filled
as soon as one run has finished.
"""

from __future__ import annotations

from datetime import timedelta

from rich.progress import ProgressColumn, Task
from rich.text import Text

RESUMED = "resumed"  # the task field: runs already finished when the bar started
UNKNOWN = "-:--:--"


def seconds_left(task: Task) -> float | None:
    """The seconds the runs left will take at this launch's pace, or None before one has finished."""
    finished = task.completed - task.fields.get(RESUMED, 0)
    if task.total is None or finished <= 0 or not task.elapsed:
        return None
    return task.elapsed / finished * max(task.total - task.completed, 0)


class RunsRemainingColumn(ProgressColumn):
    """``0:04:10``: :func:`seconds_left`, as rich shows a time."""

    def render(self, task: Task) -> Text:
        seconds = seconds_left(task)
        text = UNKNOWN if seconds is None else str(timedelta(seconds=round(seconds)))
        return Text(text, style="progress.remaining")
