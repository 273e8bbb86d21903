"""Resume: the sweep recorded in a directory, rerun into it; each job skips itself if its ``result.json``
says completed, so only failed, damaged, killed or never-started jobs train again.

The overrides come from the wrapper's plan (``sweep.json``), else from Hydra's ``multirun.yaml`` (a
sweep run by hand). A run directory is data, never code, so they are rerun only if entrenar-bench
could have planned them itself: options of the project's own config groups and plain values. Refused,
unless the user repeats them after ``--``: anything naming ``_target_`` (code to instantiate),
resolvers other than ``oc.env`` (``oc.decode`` builds configs from text), ``hydra.*`` settings, and
groups or options that are not the project's. The one search path the wrapper writes (a
cost-performance sweep's own ``configurations/`` folder) is followed only if every file in it is a
plain option of a project group, checked the same way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException

from entrenar_bench.errors import UsageError
from entrenar_bench.files import CONF_DIR, load_yaml, read_data
from entrenar_bench.sweep.compose import count_values, max_runs
from entrenar_bench.sweep.launch import CHECKED_SWEEPER, launch_multirun
from entrenar_bench.sweep.supervise import PLAN_FILE, hold_sweep

DROPPED = ("hydra.sweep.dir", "hydra.mode")  # set again by the wrapper on every launch
SET_AGAIN = (f"hydra/sweeper={CHECKED_SWEEPER}",)  # likewise (sweep/launch.py's sweeper_overrides)
RESOLVER = re.compile(r"\$\{\s*([\w.\-]+)\s*:")
SAFE_RESOLVERS = ("oc.env",)


def _read(path: Path) -> Any:
    """A YAML or JSON file of the sweep; UsageError (one line) if it is unreadable."""
    try:
        return load_yaml(read_data(path))
    except (OSError, ValueError, yaml.YAMLError) as e:
        reason = e.strerror if isinstance(e, OSError) else " ".join(str(e).split())[:120]
        raise UsageError(f"--resume {path.parent}: unreadable {path.name} ({reason})") from None


def _strings(value: Any, where: str, path: Path) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"--resume {path.parent}: {path.name} has no list of overrides at {where}")
    return value


def recorded_overrides(sweep_dir: Path, task_name: str) -> list[str]:
    """The overrides the sweep ran with (those the wrapper sets again left out); UsageError if
    the directory is not a sweep of this command."""
    if not sweep_dir.is_dir():
        raise UsageError(f"--resume {sweep_dir}: no such directory")
    plan, multirun = sweep_dir / PLAN_FILE, sweep_dir / "multirun.yaml"
    if os.path.lexists(plan):
        recorded = _read(plan)
        if not isinstance(recorded, dict):
            raise UsageError(f"--resume {sweep_dir}: {PLAN_FILE} is not a sweep plan")
        overrides, recorded_task = _strings(recorded.get("overrides"), "overrides", plan), recorded.get("task_name")
    elif os.path.lexists(multirun):
        recorded = _read(multirun)
        hydra = recorded.get("hydra") if isinstance(recorded, dict) else None
        lists = hydra.get("overrides") if isinstance(hydra, dict) else None
        if not isinstance(lists, dict):
            raise UsageError(f"--resume {sweep_dir}: multirun.yaml has no hydra.overrides")
        overrides = [*_strings(lists.get("task"), "hydra.overrides.task", multirun),
                     *_strings(lists.get("hydra", []), "hydra.overrides.hydra", multirun)]
        recorded_task = recorded.get("task_name")
    else:
        raise UsageError(f"--resume {sweep_dir}: not a sweep directory (no multirun.yaml, no {PLAN_FILE})")
    if recorded_task != task_name:
        raise UsageError(f"--resume {sweep_dir}: a {str(recorded_task)[:40]!r} sweep, not {task_name!r}; "
                         f"resume it with the command that started it")
    return [o for o in overrides
            if not o.lstrip("+~").startswith(tuple(f"{k}=" for k in DROPPED)) and o not in SET_AGAIN]


def _code_in_text(text: str) -> str | None:
    """Why text could make a config run code: ``_target_``, or a resolver that builds configs."""
    if "_target_" in text:
        return "it names code to instantiate (_target_)"
    unsafe = sorted({name for name in RESOLVER.findall(text) if name not in SAFE_RESOLVERS})
    return f"it calls the resolver {', '.join(unsafe)}" if unsafe else None


def _option_file(group: str, option: str, search: Sequence[Path]) -> bool:
    return any((root / group / f"{option}.yaml").is_file() for root in (CONF_DIR, *search))


def _group_problem(group: str, options: Iterable[Any], search: Sequence[Path]) -> str | None:
    group = group.strip("/")
    if group.split("/")[0] == "hydra":
        return "it selects a Hydra config group"
    if not (CONF_DIR / group).is_dir():
        return f"{group} is not a config group of entrenar-bench"
    for option in options:
        if option is not None and not (isinstance(option, str) and _option_file(group, option, search)):
            return f"{group}={option} is not an option of entrenar-bench's configs"
    return None


def _option_problem(file: Path, search: Sequence[Path]) -> str | None:
    """Why an option file in the sweep is not plain data: code, Hydra settings, or foreign groups."""
    try:
        text = read_data(file).decode("utf-8")
        content = load_yaml(text)
    except (OSError, ValueError, yaml.YAMLError):
        return "unreadable"
    if not isinstance(content, dict):
        return "not a mapping"
    problem = _code_in_text(text)
    if problem or "hydra" in content:
        return problem or "it sets Hydra's own settings"
    defaults = content.get("defaults", [])
    for entry in defaults if isinstance(defaults, list) else [None]:
        if entry == "_self_":
            continue
        if not (isinstance(entry, dict) and len(entry) == 1):
            return "its defaults list is not plain group: option entries"
        (key, option), = entry.items()
        problem = _group_problem(str(key).removeprefix("override ").strip(), [option], search)
        if problem:
            return problem
    return None


def _search_folder(entry: str, sweep_dir: Path) -> Path | str:
    """The folder of the sweep a recorded ``file://`` search path names, or why it is refused. A sweep that
    was moved still names its folder by its old path: the folder of the same name in the sweep is used."""
    if not entry.startswith("file://"):
        return f"the search path {entry!r} is not a folder"
    folder = sweep_dir / Path(entry[len("file://"):]).name
    if folder.is_symlink() or not folder.is_dir():
        return f"the search path {entry!r} is not a folder of this sweep"
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            path = Path(root, name)
            relative = path.relative_to(folder)
            if path.is_symlink() or (name in files and (len(relative.parts) != 2 or path.suffix != ".yaml")):
                return f"{path} is not an option file (<group>/<option>.yaml)"
            if name in files and (problem := _group_problem(relative.parts[0], [], ())
                                  or _option_problem(path, [folder])):
                return f"{path}: {problem}"
    return folder


def _values(override: Override, limit: int) -> list[Any]:
    if not override.is_sweep_override():
        return [override.value()]
    if count_values(override) > limit:
        raise HydraException(f"more than {limit} values")
    return list(override.sweep_string_iterator())


def _searchpath(line: str, override: Override, sweep_dir: Path, search: list[Path]) -> tuple[str, str | None]:
    """A recorded ``hydra.searchpath``: rewritten to the sweep's own folders (added to ``search``), or why not."""
    entries = override.value()
    folders = [_search_folder(str(e), sweep_dir) for e in entries] if isinstance(entries, list) else ["not a list"]
    problem = next((f for f in folders if isinstance(f, str)), None)
    if problem:
        return line, problem
    search += folders
    return f"hydra.searchpath=[{','.join(f'file://{f}' for f in folders)}]", None


def _problem(override: Override, search: Sequence[Path], limit: int) -> str | None:
    key = override.key_or_group
    if key.split("/")[0].split(".")[0] == "hydra":
        return "it changes Hydra's own settings"
    if "/" in key or (CONF_DIR / key).is_dir():
        try:
            return _group_problem(key, _values(override, limit), search)
        except HydraException as e:
            return f"its values cannot be listed ({e})"
    return None


def checked_overrides(overrides: Sequence[str], sweep_dir: Path, repeated: Sequence[str] = ()) -> list[str]:
    """The recorded overrides that are data (see the module docstring), search paths pointed at the sweep's
    own folders; UsageError naming the first one that is not, unless the user repeated it."""
    parser, limit = OverridesParser.create(), max_runs()
    parsed: list[tuple[str, Override]] = []
    for line in overrides:
        try:
            (override,) = parser.parse_overrides([line])
        except (HydraException, ValueError) as e:
            raise UsageError(f"--resume {sweep_dir}: unreadable recorded override {line[:80]!r} "
                             f"({' '.join(str(e).split())[:120]})") from None
        parsed.append((line, override))
    search: list[Path] = []
    lines = {}  # the search paths first: the options of the others may live there
    for line, override in sorted(parsed, key=lambda p: p[1].key_or_group != "hydra.searchpath"):
        problem = None if line in repeated else _code_in_text(line)
        if line not in repeated and not problem:
            if override.key_or_group == "hydra.searchpath":
                lines[line], problem = _searchpath(line, override, sweep_dir, search)
            else:
                problem = _problem(override, search, limit)
        if problem:
            raise UsageError(f"--resume {sweep_dir}: the recorded override {line[:80]!r} was not planned by "
                             f"entrenar-bench ({problem}); if you trust it, repeat it after --")
    return [lines.get(line, line) for line, _ in parsed]


def resume_sweep(sweep_dir: Path | str, task_name: str, preload: Sequence[str] = (),
                 repeated: Sequence[str] = ()) -> Path:
    """Rerun the ``task_name`` sweep recorded in ``sweep_dir`` into ``sweep_dir``; return it. ``repeated``:
    overrides the user gave again on the command line (each must be one the sweep recorded)."""
    sweep_dir = Path(sweep_dir).resolve()
    if not any(os.path.lexists(sweep_dir / name) for name in (PLAN_FILE, "multirun.yaml")):
        recorded_overrides(sweep_dir, task_name)  # says why it is not a sweep, leaving no lock file behind
    with hold_sweep(sweep_dir):  # first: a second resume of this sweep stops here, at once
        recorded = recorded_overrides(sweep_dir, task_name)
        unknown = [o for o in repeated if o not in recorded]
        if unknown:
            raise UsageError(f"--resume reruns the sweep as recorded; {unknown[0]!r} is not one of its overrides "
                             "(it would be ignored): drop it, or start a new sweep")
        return launch_multirun(task_name, checked_overrides(recorded, sweep_dir, repeated), sweep_dir, preload)
