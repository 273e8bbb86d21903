"""Resume: the recorded multirun, rerun into its own directory (overrides read back from Hydra's
``multirun.yaml``); each job skips itself if its ``result.json`` says completed, so only failed,
killed or never-started jobs train again."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from entrenar_bench.errors import UsageError
from entrenar_bench.sweep.launch import launch_multirun


def recorded_overrides(sweep_dir: Path, task_name: str) -> list[str]:
    """The overrides a sweep was started with, from Hydra's ``multirun.yaml``; UsageError if it is
    not a sweep directory of this command."""
    path = sweep_dir / "multirun.yaml"
    if not sweep_dir.is_dir():
        raise UsageError(f"--resume {sweep_dir}: no such directory")
    try:
        recorded = yaml.safe_load(path.read_text())
        task = list(recorded["hydra"]["overrides"]["task"])
        hydra = [o for o in recorded["hydra"]["overrides"]["hydra"]
                 if not o.startswith(("hydra.sweep.dir=", "hydra.mode="))]
        recorded_task = recorded.get("task_name")
    except FileNotFoundError:
        raise UsageError(f"--resume {sweep_dir}: not a sweep directory (no multirun.yaml)") from None
    except (OSError, yaml.YAMLError, KeyError, TypeError) as e:
        raise UsageError(f"--resume {sweep_dir}: unreadable multirun.yaml ({type(e).__name__})") from None
    if recorded_task != task_name:
        raise UsageError(f"--resume {sweep_dir}: a {recorded_task!r} sweep, not {task_name!r}; "
                         f"resume it with the command that started it")
    return [*task, *hydra]


def resume_sweep(sweep_dir: Path | str, task_name: str, preload: Sequence[str] = ()) -> Path:
    """Rerun the ``task_name`` sweep recorded in ``sweep_dir`` into ``sweep_dir``; return it."""
    sweep_dir = Path(sweep_dir).resolve()
    return launch_multirun(task_name, recorded_overrides(sweep_dir, task_name), sweep_dir, preload)
