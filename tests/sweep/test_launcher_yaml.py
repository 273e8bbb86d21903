"""A launcher is its YAML: its knobs and their defaults, wired into Hydra's launcher plugin; placement needs a
rule only where it must know the launcher."""

import pytest

from entrenar_bench.errors import ConfigError
from entrenar_bench.run.checks import validate_config
from entrenar_bench.run.placement import RULES, check_devices, parallel_jobs, runs_elsewhere
from entrenar_bench.sweep.compose import compose_config, launcher_plugin

PAIRS = """# @package _global_
# joblib with its worker count named by this file's own knob
defaults:
  - override /hydra/launcher: joblib
launcher:
  name: pairs
  workers: 2
hydra:
  launcher:
    n_jobs: ${launcher.workers}
"""


def test_a_new_launcher_is_one_yaml(tmp_path):
    (tmp_path / "launcher").mkdir()
    (tmp_path / "launcher" / "pairs.yaml").write_text(PAIRS)
    searchpath = f"hydra.searchpath=[file://{tmp_path}]"
    cfg = compose_config([searchpath, "launcher=pairs", "launcher.workers=3"], hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher") and cfg.hydra.launcher.n_jobs == 3
    plain = compose_config([searchpath, "launcher=pairs"])
    validate_config(plain)
    assert "pairs" not in RULES and parallel_jobs(plain) == 1 and not runs_elsewhere(plain)  # no rule: one at a time
    with pytest.raises(ConfigError, match="trainer.devices=2 needs launcher=basic"):
        check_devices(compose_config([searchpath, "launcher=pairs", "trainer.devices=2"]))


def test_the_packaged_launchers_name_their_plugin_and_extra():
    assert launcher_plugin("basic") == ("basic", None)
    assert launcher_plugin("joblib") == ("joblib", "parallel")
    assert launcher_plugin("submitit_slurm") == ("submitit_slurm", "slurm")
    assert launcher_plugin("ray") == ("ray", "ray")
    assert launcher_plugin("nowhere") == launcher_plugin("../config") == (None, None)


def test_a_launcher_knob_has_one_home(compose_cfg):
    """The value set on the launcher node is what Hydra's plugin gets; no schema elsewhere restates it."""
    slurm = compose_config(["launcher=submitit_slurm", "launcher.mem_gb=4", "launcher.timeout_min=5"],
                           hydra_config=True)
    assert (slurm.hydra.launcher.mem_gb, slurm.hydra.launcher.timeout_min) == (4, 5)
    assert runs_elsewhere(slurm)
    assert runs_elsewhere(compose_cfg("launcher=ray", "launcher.address=head:6379"))
    assert not runs_elsewhere(compose_cfg("launcher=ray"))
