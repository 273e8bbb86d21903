"""The ``logger`` config group (conf/logger/): which Lightning logger each entry names, and the checks made
before anything runs. Light on purpose: the command line checks a sweep's jobs without loading Lightning.

``cfg.logger`` maps a name to a ``_target_`` node of a Lightning logger; several at once is
``logger=[tensorboard,mlflow]`` (Hydra's list of configs from one group), none is ``logger=[]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning_utilities.core.imports import package_available

from entrenar_bench.errors import ConfigError

# logger class -> (the packages it can use, either one; the pyproject extra that installs them)
PACKAGES = {
    "TensorBoardLogger": (("tensorboard", "tensorboardX"), "tracking"),
    "MLFlowLogger": (("mlflow",), "tracking"),
    "WandbLogger": (("wandb",), "wandb"),
}


def logger_class(node: Mapping) -> str:
    """``MLFlowLogger`` for ``lightning.pytorch.loggers.MLFlowLogger`` (or any module path to it)."""
    return str(node.get("_target_", "")).rpartition(".")[2]


def logger_nodes(cfg: Mapping) -> dict[str, Any]:
    """The run's logger entries by name; none where the group is left out (``logger=[]``)."""
    return dict(cfg.get("logger") or {})


def check_loggers(cfg: Mapping) -> None:
    """Each entry is a logger node whose package is installed (else one line naming the extra), and W&B
    stays offline: nothing leaves the machine."""
    for name, node in logger_nodes(cfg).items():
        if not isinstance(node, Mapping) or "_target_" not in node:
            raise ConfigError(f"logger.{name}: expected a `_target_` node of a Lightning logger (conf/logger/), "
                              f"got {node!r}")
        modules, extra = PACKAGES.get(logger_class(node), ((), None))
        if modules and not any(package_available(m) for m in modules):
            raise ConfigError(f"logger.{name} needs the {modules[0]} package: pip install -e '.[{extra}]'")
        if logger_class(node) == "MLFlowLogger" and not node.get("tracking_uri"):
            raise ConfigError(f"logger.{name}.tracking_uri: a tracking URI is needed (conf/logger/mlflow.yaml: "
                              "a SQLite store under ENTRENAR_BENCH_HOME)")
        if logger_class(node) == "WandbLogger" and node.get("offline") is not True:
            raise ConfigError(f"logger.{name}.offline must be true: W&B runs stay on this machine "
                              "(upload them later with `wandb sync`)")
