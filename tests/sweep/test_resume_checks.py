"""Resume treats a run directory as data: it reruns what entrenar-bench itself plans (a cost-performance
sweep's own option folder included, even moved), refuses code, Hydra settings and foreign groups, and never
fails on any bytes with anything but a one-line UsageError."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrenar_bench.cost.configs import Configuration, option_texts, write_options
from entrenar_bench.errors import UsageError
from entrenar_bench.sweep.resume import checked_overrides, recorded_overrides
from entrenar_bench.sweep.supervise import PLAN_FILE


@pytest.fixture
def cost_sweep(tmp_path, bench_home) -> Path:
    """A cost-performance sweep as the wrapper writes it (its options generated), then moved elsewhere."""
    original = tmp_path / "original"
    texts = option_texts([Configuration("LoRA r=2", ("finetune=lora", "finetune.r=2")),
                          Configuration("Full", ("finetune=full",))], "test", prefix="sweep_")
    names = write_options(texts, original / "configurations")
    (original / PLAN_FILE).write_text(json.dumps({"task_name": "cost_performance", "overrides": [
        "+bench=cost_performance", "seed=0,1", f"cost_config={','.join(names)}",
        f"hydra.searchpath=[file://{original / 'configurations'}]", "train.epochs=2"]}))
    moved = tmp_path / "moved"
    shutil.move(original, moved)
    return moved


def test_a_cost_sweep_resumes_from_its_own_options_even_moved(cost_sweep):
    overrides = checked_overrides(recorded_overrides(cost_sweep, "cost_performance"), cost_sweep)
    assert f"hydra.searchpath=[file://{cost_sweep / 'configurations'}]" in overrides
    assert "cost_config=sweep_lora_r_2,sweep_full" in overrides and "train.epochs=2" in overrides


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "cost_config" / "sweep_full.yaml").write_text(
        "data:\n  _target_: builtins.exec\n  source: print(1)\n"), "_target_"),
    (lambda d: (d / "cost_config" / "sweep_full.yaml").write_text("hydra:\n  searchpath: [file:///]\n"),
     "Hydra's own settings"),
    (lambda d: (d / "cost_config" / "sweep_full.yaml").write_text(
        "defaults:\n  - override /hydra/launcher: basic\n"), "Hydra config group"),
    (lambda d: (d / "cost_config" / "sweep_full.yaml").write_text("defaults:\n  - override /data: evil\n"),
     "not an option"),
    (lambda d: (d / "cost_config" / "sweep_full.yaml").write_text("x: '${oc.decode:y}'\n"), "oc.decode"),
    (lambda d: (d / "cost_config" / "extra.py").write_text("import os\n"), "not an option file"),
    (lambda d: (d / "data").mkdir() or (d / "data" / "digits.yaml").write_text("x: 1\n") or None, None),
    (lambda d: (d / "cost_config" / "link.yaml").symlink_to("/etc/passwd"), "not an option file"),
    (lambda d: (d / "nested" / "deeper").mkdir(parents=True) or (d / "nested" / "deeper" / "x.yaml").write_text(""),
     "not an option file"),
])
def test_a_tampered_option_folder_is_refused(cost_sweep, damage, message):
    damage(cost_sweep / "configurations")
    recorded = recorded_overrides(cost_sweep, "cost_performance")
    if message is None:  # a plain option of a project group, no code: data, allowed
        assert checked_overrides(recorded, cost_sweep)
        return
    with pytest.raises(UsageError, match="not planned by entrenar-bench") as refused:
        checked_overrides(recorded, cost_sweep)
    assert message in str(refused.value)


def test_a_search_path_outside_the_sweep_is_refused(tmp_path, bench_home):
    (tmp_path / PLAN_FILE).write_text(json.dumps({"task_name": "compare", "overrides": [
        "+bench=compare", "hydra.searchpath=[pkg://evil.conf]"]}))
    with pytest.raises(UsageError, match="is not a folder"):
        checked_overrides(recorded_overrides(tmp_path, "compare"), tmp_path)


def test_plain_overrides_of_the_project_pass_unchanged(tmp_path, bench_home):
    overrides = ["+bench=compare", "seed=0,1,2", "distill=kd,none,attention", "data=mnist1d", "train.epochs=2",
                 "launcher=joblib", "ablate=full", "~teacher.seed", "paths.output_dir=${oc.env:HOME}/out"]
    assert checked_overrides(overrides, tmp_path) == overrides


overrides = st.lists(st.text(max_size=40) | st.sampled_from([
    "hydra.searchpath=[file:///]", "data._target_=os.system", "seed=range(0,100000000000)", "data=../x",
    "seed=range(0,5,0)", "+x=${oc.decode:y}", "distill=glob(*)", "data=digits,mnist1d", "a@b=c", "=", "~"]),
    max_size=4)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overrides)
def test_any_recorded_overrides_are_checked_or_refused_in_one_line(recorded):
    with tempfile.TemporaryDirectory() as tmp:
        try:
            checked = checked_overrides(recorded, Path(tmp))
        except UsageError as e:
            assert "\n" not in str(e).strip()
            return
        assert len(checked) == len(recorded) and not any("_target_" in o for o in checked)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=120) | st.builds(json.dumps, st.recursive(
    st.none() | st.text(max_size=10) | st.integers(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["task_name", "hydra", "overrides", "task", "sweeper"]), inner, max_size=3), max_leaves=10)),
    st.sampled_from(["multirun.yaml", PLAN_FILE]))
def test_any_recorded_file_reads_or_is_refused_in_one_line(content, name):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / name).write_bytes(content if isinstance(content, bytes) else content.encode())
        try:
            recorded = recorded_overrides(Path(tmp), "compare")
        except UsageError as e:
            assert "\n" not in str(e).strip()
            return
        assert all(isinstance(o, str) for o in recorded)


def test_the_sweeper_the_wrapper_sets_is_not_a_recorded_override(tmp_path, bench_home):
    """A sweep's multirun.yaml records the wrapper's ``hydra/sweeper=checked``; the wrapper sets it again (it is no
    Hydra setting of the user's to refuse)."""
    (tmp_path / "multirun.yaml").write_text("task_name: compare\nhydra: {overrides: {task: [+bench=compare, seed=0], "
                                            "hydra: [hydra/sweeper=checked, hydra.mode=MULTIRUN]}}\n")
    assert checked_overrides(recorded_overrides(tmp_path, "compare"), tmp_path) == ["+bench=compare", "seed=0"]
