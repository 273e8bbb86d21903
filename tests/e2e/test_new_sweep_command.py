"""A new sweep command defined in this file alone: GKD's β (``distill.beta``, the mixture weight of the generalised
JSD) swept like temperature, registered through ``sweep/commands.py`` and run end to end through the CLI with its
own bench YAML on Hydra's search path; nothing under entrenar_bench/ knows its name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from entrenar_bench.sweep.commands import ParameterSweep, register_command

NAME = "gkd_beta"
HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parents[1] / "entrenar_bench"
BENCH_YAML = f"""# @package _global_
defaults:
  - override /distill: kd
distill:
  logit_loss: jsd
task_name: {NAME}
hydra:
  mode: MULTIRUN
  sweeper:
    params:
      seed: 0,1,2
      distill.beta: 0.0,0.5,1.0
"""


def command(conf: Path) -> ParameterSweep:
    return ParameterSweep(NAME, "Sweep GKD's beta", "kd with the generalised JSD at each beta.", key="distill.beta",
                          label="JSD beta", header="Beta", short="beta", conf_file=conf / "bench" / f"{NAME}.yaml")


def write_conf(root: Path) -> Path:
    (root / "bench").mkdir(parents=True, exist_ok=True)
    (root / "bench" / f"{NAME}.yaml").write_text(BENCH_YAML)
    return root


if __name__ == "__main__":  # the command line with this command registered: python test_new_sweep_command.py CONF ARGS
    from entrenar_bench.cli.main import main

    register_command(command(Path(sys.argv[1])))
    sys.exit(main(sys.argv[2:]))


def test_no_file_of_the_package_knows_the_new_command():
    assert not [p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix in (".py", ".yaml")
                and NAME in p.read_text(errors="ignore")]


def test_its_defaults_come_from_its_yaml(tmp_path):
    defaults = command(write_conf(tmp_path)).defaults()
    assert defaults == {"runs": 3, "start": 0.0, "end": 1.0, "step": 0.5}
    planned = command(tmp_path).plan({"start": 0.0, "end": 1.0, "step": 1.0}, 2)
    assert planned == ["seed=0,1", "distill.beta=0.0,1.0"]


def test_a_new_sweep_command_runs_through_the_cli(bench_home, tmp_path):
    conf = write_conf(tmp_path / "conf")
    env = {**os.environ, "ENTRENAR_BENCH_HOME": str(bench_home), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, __file__, str(conf), NAME, "--start", "0", "--end", "1", "--step", "1", "--runs", "2",
         "--format", "json", "--", f"hydra.searchpath=[file://{conf}]", "train.epochs=3"],
        capture_output=True, text=True, env=env, cwd=bench_home, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    document = json.loads(proc.stdout)
    assert document["sweep_type"] == NAME
    assert [r[NAME] for r in document["results"]] == [0.0, 1.0]
    assert all(r["n"] == 2 for r in document["results"])
    assert document[f"best_{NAME}"] in (0.0, 1.0)
    records = [json.loads(p.read_text()) for p in sorted(Path(document["sweep_dir"]).glob("*/result.json"))]
    assert len(records) == 4 and all(r["status"] == "completed" for r in records)
    assert sorted({r["distill"]["beta"] for r in records}) == [0.0, 1.0]
    assert all(r["distill"]["logit_loss"] == "jsd" for r in records)
