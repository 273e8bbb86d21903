"""The model card (``README.md``) of an exported student: what it is, how well, against what, and how to remake it.

Teacher, data, distillation and fine-tuning settings come from the exported run's ``result.json`` (its resolved
config); the metric is the deciding one (aggregate/metrics.py) with the group's mean, std and 95% t-interval over
its units (runs, or teachers) and the run's own test and validation values; the comparison is the report's own
(``aggregate``, Welch or ``--paired``, Holm over all its pairs) of the group against the runner-up or, for a group
named by hand, against the selected group, and the group "won" only when that test is significant in its favour;
the commands are the run's own overrides and the sweep's (``multirun.yaml``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entrenar_bench.aggregate.collect import Collection, flatten
from entrenar_bench.aggregate.pruning_card import pruning_lines
from entrenar_bench.aggregate.report import TEST_NAMES, outcome_text, pair_text
from entrenar_bench.aggregate.selection import tie_rule
from entrenar_bench.aggregate.usefulness import card_lines
from entrenar_bench.files import load_yaml, read_data
from entrenar_bench.models.saving import has_tokenizer

APP = "python -m entrenar_bench.run"
# how, not what
CHECKPOINTS = ("checkpoint_every", "keep_checkpoints", "train.checkpoint_every", "train.keep_checkpoints")
FORMATS = {"huggingface": "Hugging Face `save_pretrained` (safetensors, `config.json`)",
           "state_dict": "a safetensors state dict (`model.safetensors`) and the model's config (`model_config.json`)"}


@dataclass
class Chosen:
    """What an export chose: the group's summary, the comparison test, whether the report selected the group,
    the run's row and record, the saved format, the folder the student was copied to, and how many pairs the
    report's Holm family has."""

    collection: Collection
    summary: dict[str, Any]
    test: dict[str, Any] | None
    selected: bool
    run: dict[str, Any]
    record: dict[str, Any]
    form: str
    directory: Path
    family: int = 1


def _number(value: Any, digits: int = 4) -> str:
    return "—" if not isinstance(value, (int, float)) or value != value else f"{value:.{digits}f}"


def _settings(node: Any, prefix: str, skip: tuple[str, ...] = ()) -> list[str]:
    """``- `prefix.key`: value`` lines of a config section (nested keys dotted), as overrides spell them."""
    if not isinstance(node, dict):
        return [f"- `{prefix}`: {node}"]
    return [f"- `{prefix}.{key}`: {value}" for key, value in flatten(node).items() if not key.startswith(skip)]


def _sweep_commands(sweep_dir: Path) -> tuple[list[str], list[str]]:
    """The sweep's task overrides and the search-path overrides its jobs need, from ``multirun.yaml``."""
    try:
        hydra = load_yaml(read_data(sweep_dir / "multirun.yaml"))["hydra"]
        task = [o for o in hydra["overrides"]["task"] if isinstance(o, str)]
        search = [o for o in hydra["overrides"].get("hydra", [])
                  if isinstance(o, str) and o.startswith("hydra.searchpath")]
        return task, search
    except (OSError, ValueError, KeyError, TypeError):
        return [], []


def _result_lines(chosen: Chosen) -> list[str]:
    metric, s, record = chosen.collection.metric, chosen.summary, chosen.record
    m = s["metric"]
    low, high = m["ci95"]
    ci = f"95% CI [{_number(low)}, {_number(high)}]" if low is not None else "95% CI undefined (one unit)"
    units = f"{m['n']} {'teacher' if s['unit'] == 'teacher' else 'run'}{'s' if m['n'] != 1 else ''}"
    metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    others = ", ".join(f"{k} {_number(v)}" for k, v in metrics.items() if not k.startswith("val_") and k != metric.name)
    return ["## Result", "",
            f"- Deciding metric: **{metric.name}** ({metric.direction}), on the test split.",
            f"- This group: mean {_number(m['mean'])} ± {_number(m['std'])} (sample std) over {units}, {ci}.",
            f"- This run: test {metric.name} {_number(metrics.get(metric.name))}, validation {metric.name} "
            f"{_number(metrics.get(metric.val_name))}" + (f"; also {others}." if others else "."),
            f"- Selection: {tie_rule(metric)} (the group, then its run, chosen on validation; the numbers above and "
            "the test below are on the test split)."]


def _comparison_lines(chosen: Chosen) -> list[str]:
    metric, test, group = chosen.collection.metric, chosen.test, chosen.summary["group"]
    lines = ["## Comparison", ""]
    if not test:
        return lines + ["- The sweep has one group: no comparison."]
    other = test["b"]  # the family's test, oriented as group − other (report.family_test)
    verdict = "significant" if test.get("significant") else "not significant"
    how = outcome_text(test, other) if chosen.selected else \
        f"was named with --group; the report selects {other}. Against it"
    family = f"Holm over the report's {chosen.family} pair{'s' if chosen.family != 1 else ''}"
    lines.append(f"- {group} {how}: difference in test {metric.name} ({group} − {other}, {metric.direction}) "
                 f"{pair_text(test)}, {TEST_NAMES[test['test']]}, {family} ({verdict} at 0.05; "
                 f"n = {test['n_a']} vs {test['n_b']}).")
    return lines


def _teacher_lines(record: dict[str, Any]) -> list[str]:
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    teacher = record.get("teacher") if isinstance(record.get("teacher"), dict) else None
    lines = ["## Teacher", ""]
    if teacher is None:
        return lines + ["- None: this strategy trains the student alone (`distill=none`)."]
    lines += _settings(config.get("teacher"), "teacher", skip=CHECKPOINTS)
    metrics = teacher.get("metrics") if isinstance(teacher.get("metrics"), dict) else {}
    shown = ", ".join(f"{k} {_number(v)}" for k, v in metrics.items() if not str(k).startswith("val_"))
    return lines + [f"- Parameters: {teacher.get('params')}; its test metrics: {shown or 'not recorded'}.",
                    f"- Cache: `{teacher.get('cache')}`"]


def _files_lines(chosen: Chosen) -> list[str]:
    config = chosen.record.get("config") if isinstance(chosen.record.get("config"), dict) else {}
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    method = (config.get("finetune") or {}).get("method")
    merged = " LoRA adapters merged into the weights." if method == "lora" else ""
    lines = ["## Files", "", f"- Format: {FORMATS[chosen.form]}.{merged}"]
    if has_tokenizer(chosen.directory):
        lines.append(f"- Tokenizer: included (from `{data.get('tokenizer')}`), with its chat template if it has one.")
    else:
        vocabulary = data.get("vocab_size")
        lines.append(f"- No tokenizer: the data (`{data.get('_target_')}`) is token ids only"
                     + (f" (a vocabulary of {vocabulary} ids)" if vocabulary else "")
                     + "; give the model ids directly.")
    return lines


def _reproduce_lines(chosen: Chosen, command: str | None) -> list[str]:
    sweep_dir = chosen.collection.sweep_dir
    overrides = chosen.record.get("overrides") if isinstance(chosen.record.get("overrides"), list) else []
    task, search = _sweep_commands(sweep_dir)
    lines = ["## Reproduce", "", "```bash", f"{APP} {shlex.join([*overrides, *search])}   # this run"]
    if task:
        lines.append(f"{APP} -m {shlex.join([*task, *search])}   # the whole sweep")
    if command:
        lines.append(f"{command}   # this export")
    lines.append("```")
    if chosen.form == "huggingface":
        lines += ["", "```python", "from transformers import AutoModelForCausalLM",
                  "model = AutoModelForCausalLM.from_pretrained(\"<this directory>\")", "```"]
    return lines


def _with_gap(lines: list[str]) -> list[str]:
    return [*lines, ""] if lines else []


def model_card(chosen: Chosen, command: str | None = None) -> str:
    """The card's Markdown text (with a Hugging Face metadata header for a ``save_pretrained`` student)."""
    record, s, run = chosen.record, chosen.summary, chosen.run
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    student = (config.get("student") or {}).get("name", "student")
    strategy = (record.get("distill") or {}).get("name", "?")
    teacher = (config.get("teacher") or {}).get("name", "?") if record.get("teacher") else "no teacher"
    header = ["---", "library_name: transformers", "tags: [knowledge-distillation, entrenar-bench]", "---", ""] \
        if chosen.form == "huggingface" else []
    teacher_seed = (config.get("teacher") or {}).get("seed")
    lines = [*header, f"# {student}, distilled from {teacher} ({strategy})", "",
             f"Exported by `entrenar-bench export` from the sweep `{chosen.collection.sweep_dir}`: group "
             f"`{s['group']}` ({'selected by the report' if chosen.selected else 'named with --group'}), run "
             f"`{run['job']}`.", "",
             *_result_lines(chosen), "", *_comparison_lines(chosen), "",
             *_with_gap(card_lines(chosen.collection, s["group"], record)),
             "## Seeds", "",
             f"- This run: seed {run['seed']}" + (f", teacher seed {teacher_seed}" if record.get("teacher") else "")
             + ".",
             f"- The group's runs: seeds {', '.join(map(str, s['seeds']))}"
             + (f"; teacher seeds {', '.join(map(str, s['teachers']))}" if s["teachers"] else "") + ".", "",
             *_teacher_lines(record), "",
             "## Data", "", *_settings(config.get("data"), "data"), "",
             "## Distillation", "", *_settings(record.get("distill"), "distill"), "",
             "## Student and training", "", *_settings(config.get("student"), "student"),
             *_settings(config.get("train"), "train", skip=CHECKPOINTS),
             *(_settings(config.get("finetune"), "finetune", skip=("base.checkpoint", "base.keep"))
               if (config.get("finetune") or {}).get("method", "none") != "none" else []), "",
             *pruning_lines(record), *_files_lines(chosen), "", *_reproduce_lines(chosen, command), ""]
    return "\n".join(lines)
