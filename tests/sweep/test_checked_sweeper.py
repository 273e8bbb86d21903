"""The sweeps select ``hydra/sweeper=checked`` (``hydra_plugins/entrenar_bench_sweeper``): Hydra's basic sweeper,
which composes every job of a batch before launching it, less that composition, since ``check_jobs`` has done it."""

from __future__ import annotations

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from entrenar_bench.sweep.compose import compose_config
from entrenar_bench.sweep.launch import sweeper_overrides


def test_the_sweeps_select_the_checked_sweeper_unless_the_user_chose_one(bench_home):
    assert sweeper_overrides(["+bench=compare", "seed=0,1"]) == ["hydra/sweeper=checked"]
    assert sweeper_overrides(["hydra/sweeper=basic"]) == []


def test_the_checked_sweeper_expands_a_sweep_as_the_basic_one(bench_home):
    """Same product, same order (``sweep/compose.py`` lists the jobs as the basic sweeper would)."""
    cfg = compose_config(["+bench=compare", "hydra/sweeper=checked"], hydra_config=True)
    assert cfg.hydra.sweeper._target_.endswith("CheckedSweeper") and cfg.hydra.sweeper.params.seed == "0,1,2,3,4"
    from hydra_plugins.entrenar_bench_sweeper.checked_sweeper import CheckedSweeper

    arguments = OverridesParser.create().parse_overrides(["seed=0,1", "distill=kd,mse"])
    assert CheckedSweeper.split_arguments(arguments, 3) == BasicSweeper.split_arguments(arguments, 3)
