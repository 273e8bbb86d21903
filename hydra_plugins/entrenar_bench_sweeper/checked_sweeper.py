"""``hydra/sweeper=checked``: Hydra's basic sweeper without its re-validation of each batch.

The basic sweeper composes every job of a batch before launching it (``validate_batch_is_legal``, to stop a bad
job before any runs), and the launcher composes each job again to run it: two compositions a job, ~0.12 s each on
the digits configs. ``entrenar-bench``'s sweeps compose and check every job before they start the multirun
(``sweep/compose.py``'s ``check_jobs``), so they select this sweeper and each job is composed once, by the
launcher. Everything else (the cartesian product, ``params``, ``max_batch_size``, ``multirun.yaml``) is the basic
sweeper's; ``python -m entrenar_bench.run -m ...`` by hand keeps the basic sweeper and its check.

Lives in the ``hydra_plugins`` namespace package: Hydra instantiates only plugins found there. Hydra's scan runs
this module without entering it in ``sys.modules``, so no ``from __future__ import annotations`` (the dataclass
would look its annotations up there).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore


@dataclass
class CheckedSweeperConf:
    _target_: str = "hydra_plugins.entrenar_bench_sweeper.checked_sweeper.CheckedSweeper"
    max_batch_size: Optional[int] = None  # noqa: UP045  (OmegaConf reads the annotation: no `int | None` on 3.10)
    params: Optional[dict[str, str]] = None  # noqa: UP045


ConfigStore.instance().store(group="hydra/sweeper", name="checked", node=CheckedSweeperConf,
                             provider="entrenar_bench")


class CheckedSweeper(BasicSweeper):
    """The basic sweeper for batches whose every job was composed and checked before the multirun started."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Nothing to do: the sweep's jobs were checked before launch (the launcher still composes each)."""
