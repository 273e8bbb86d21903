"""Tasks: what differs between kinds of data and model (classification, causal language models, yours).

A task is one class implementing :class:`entrenar_bench.tasks.base.Task`; a data module names its task
(``task = "classification"``) and the run asks that task for everything task-specific. A new task is one
module with a registered class plus its YAML files: ``register(MyTask)``.
"""

from entrenar_bench.tasks.base import Batch, MetricSpec, Task, register, task_class, task_for

__all__ = ["Batch", "MetricSpec", "Task", "register", "task_class", "task_for"]
