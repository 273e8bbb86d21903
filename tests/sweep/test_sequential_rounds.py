"""Auto sweeps (``--runs auto``) run in rounds of ordinary multiruns, here with a stand-in launcher that writes
each job's record the way a job would (skipping a completed one), so rounds, decisions, kills and resumes are
checked without training."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from entrenar_bench import api
from entrenar_bench.aggregate.sequential_design import Design
from entrenar_bench.errors import UsageError
from entrenar_bench.sweep import sequential
from entrenar_bench.sweep.commands import sweep_command
from entrenar_bench.sweep.plan import compare_overrides
from entrenar_bench.sweep.supervise import record_plan
from tests.runs_on_disk import lm_metrics, write_run

MEANS = {"none": 2.0, "kd": 1.6, "mse": 2.0}  # held-out loss: kd far better, mse the same as none


def value_of(group: str, seed: int) -> float:
    """A deterministic draw: the group's mean plus a seed's wiggle (sd ≈ 0.02)."""
    base = MEANS.get(group, 2.0 - 0.3 * math.exp(-(float(group) - 3) ** 2) if group[0].isdigit() else 2.0)
    return base + 0.02 * math.sin(7.3 * seed + len(group))


class Launcher:
    """Stands in for launch_multirun: every job of the round's product writes its result.json unless one is there;
    ``kill_after`` jobs trained, it stops as a killed sweep would."""

    def __init__(self, kill_after: int | None = None):
        self.trained: list[tuple[str, int]] = []
        self.kill_after = kill_after

    def __call__(self, task_name, overrides, folder, preload=()):
        folder.mkdir(parents=True, exist_ok=True)
        record_plan(folder, task_name, overrides)
        seeds = next(o for o in overrides if o.startswith("seed=")).split("=")[1].split(",")
        key, values = next((o.split("=")[0], o.split("=")[1].split(",")) for o in overrides
                           if o.startswith(("distill=", "distill.temperature=")))
        job = 0
        for seed in map(int, seeds):
            for value in values:
                if not (folder / str(job) / "result.json").exists():
                    if self.kill_after is not None and len(self.trained) == self.kill_after:
                        raise KeyboardInterrupt
                    config = {"distill.name": value} if key == "distill" else {"distill.temperature": float(value)}
                    loss = value_of(value, seed)
                    write_run(folder, job, seed=seed, metrics=lm_metrics(loss, loss, 0.5), config=config,
                              overrides=[f"+bench={task_name}", f"seed={seed}", f"{key}={value}"])
                    self.trained.append((value, seed))
                job += 1
        return folder


@pytest.fixture
def launcher(monkeypatch):
    fake = Launcher()
    monkeypatch.setattr(sequential, "launch_multirun", fake)
    return fake


def compare(tmp_path: Path, design: Design, strategies=("none", "kd", "mse")) -> api.SweepResult:
    planned = [*compare_overrides(strategies, 1), f"paths.output_dir={tmp_path}"]
    return api.auto_sweep("compare", planned, design)


def test_a_clear_winner_stops_early_and_the_report_says_where_and_why(tmp_path, launcher):
    result = compare(tmp_path, Design(max_runs=8, min_runs=3, mde=0.1), ("none", "kd"))
    seq = result.document["sequential"]
    (kd,) = seq["comparisons"]
    assert kd["group"] == "kd" and kd["against"] == "none" and kd["status"] == "efficacy"
    assert kd["look"] is not None and kd["runs"] < 8 and kd["p_adjusted"] <= 0.05
    assert kd["boundary"]["p"] >= kd["p_value"] and "better than none" in kd["verdict"]
    assert seq["runs_used"] == 2 * kd["runs"] and seq["runs_saved"] == 16 - seq["runs_used"] > 0
    assert seq["stopped"] == "every comparison stopped"
    assert sorted(p.name for p in result.sweep_dir.iterdir() if p.is_dir()) == \
        [f"round-{k:02d}" for k in range(1, kd["look"] + 1)]
    assert len(launcher.trained) == len(set(launcher.trained)) == seq["runs_used"]
    assert "efficacy boundary crossed" in result.text and "saved" in result.text
    assert {r["strategy"] for r in result.document["results"]} == {"none", "kd"}  # the ordinary report, all rounds
    assert all(r["n"] == kd["runs"] for r in result.document["results"])


def test_groups_stop_one_by_one_and_the_baseline_runs_while_any_comparison_runs(tmp_path, launcher):
    result = compare(tmp_path, Design(max_runs=6, min_runs=3, mde=0.1))
    seq = result.document["sequential"]
    by_group = {c["group"]: c for c in seq["comparisons"]}
    assert by_group["kd"]["status"] == "efficacy" and by_group["mse"]["status"] == "futility"
    assert seq["runs"]["none"] == max(by_group["kd"]["runs"], by_group["mse"]["runs"])
    # round k launched only the groups still running
    for folder in sorted(result.sweep_dir.glob("round-*")):
        overrides = json.loads((folder / "sweep.json").read_text())["overrides"]
        assert overrides[0] == "+bench=compare"


def test_racing_drops_points_worse_than_the_best(tmp_path, launcher):
    planned = [*sweep_command("temperature").plan({"start": 1, "end": 5, "step": 1}, 1), f"paths.output_dir={tmp_path}"]
    result = api.auto_sweep("temperature", planned, Design(max_runs=6, min_runs=2))
    seq = result.document["sequential"]
    assert seq["reference"] == "3.0" and seq["mode"] == "racing against the best"
    dropped = [c for c in seq["comparisons"] if c["status"] == "efficacy"]
    assert dropped and all(c["runs"] < 6 and "worse than the best" in c["verdict"] for c in dropped)
    assert [(d["group"], d["look"]) for d in seq["dropped"]] == [(c["group"], c["look"]) for c in dropped]
    assert any(c["status"] == "best" for c in seq["comparisons"])


def test_a_killed_auto_sweep_resumes_with_no_run_trained_twice(tmp_path, monkeypatch):
    design = Design(max_runs=6, min_runs=2)
    whole = Launcher()
    monkeypatch.setattr(sequential, "launch_multirun", whole)
    expected = compare(tmp_path / "whole", design).document["sequential"]

    killed = Launcher(kill_after=len(whole.trained) - 3)  # in the middle of a later round
    monkeypatch.setattr(sequential, "launch_multirun", killed)
    with pytest.raises(KeyboardInterrupt):
        compare(tmp_path / "killed", design)
    (sweep_dir,) = (tmp_path / "killed" / "compare").iterdir()
    resumed = Launcher()
    monkeypatch.setattr(sequential, "launch_multirun", resumed)
    result = api.auto_sweep("compare", resume=sweep_dir)
    assert not set(killed.trained) & set(resumed.trained)
    assert sorted(killed.trained + resumed.trained) == sorted(whole.trained)
    assert result.document["sequential"]["comparisons"] == expected["comparisons"]


def test_resume_refuses_a_sweep_of_another_command(tmp_path, launcher):
    result = compare(tmp_path, Design(max_runs=4, min_runs=3), ("none", "kd"))
    with pytest.raises(UsageError, match="a 'compare' sweep, not 'temperature'"):
        api.auto_sweep("temperature", resume=result.sweep_dir)


def test_resume_reruns_a_lost_run_of_the_last_round_only(tmp_path, monkeypatch):
    """A run lost from an earlier round stays lost (later rounds were decided without it); one lost from the
    last round is trained again, and nothing else is."""
    monkeypatch.setattr(sequential, "launch_multirun", Launcher())
    sweep_dir = compare(tmp_path, Design(max_runs=6, min_runs=2)).sweep_dir
    rounds = sorted(sweep_dir.glob("round-*"))
    assert len(rounds) >= 2
    shutil.rmtree(rounds[0] / "0")
    shutil.rmtree(rounds[-1] / "1")
    resumed = Launcher()
    monkeypatch.setattr(sequential, "launch_multirun", resumed)
    api.auto_sweep("compare", resume=sweep_dir)
    assert len(resumed.trained) == 1 and resumed.trained[0][1] >= 2  # a seed of the last round


def test_aggregate_reads_an_auto_sweep_as_one_sweep_with_how_it_stopped(tmp_path, launcher, capsys):
    from entrenar_bench.cli.main import COMMAND_MODULES, run_cli

    sweep_dir = compare(tmp_path, Design(max_runs=8, min_runs=3), ("none", "kd")).sweep_dir
    capsys.readouterr()
    assert run_cli(["aggregate", str(sweep_dir), "--format", "json"], "entrenar-bench", COMMAND_MODULES) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["sequential"]["comparisons"][0]["status"] == "efficacy"
    assert (sweep_dir / "sequential.png").is_file()


def test_an_interrupted_round_names_the_auto_sweep_to_resume(tmp_path, monkeypatch):
    import signal

    from entrenar_bench.errors import Interrupted

    def stopped(task_name, overrides, folder, preload=()):
        raise Interrupted(signal.SIGTERM, f"interrupted by SIGTERM (resume it: --resume {folder})")

    monkeypatch.setattr(sequential, "launch_multirun", stopped)
    with pytest.raises(Interrupted, match=r"stopped in round 1 \(resume it: entrenar-bench compare --resume ") as e:
        compare(tmp_path, Design(max_runs=4, min_runs=3), ("none", "kd"))
    assert "round-01" not in str(e.value) and e.value.exit_code == 128 + signal.SIGTERM
