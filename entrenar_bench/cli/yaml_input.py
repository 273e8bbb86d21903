"""YAML files given on the command line (``--base``, ``--configs``): read, or one line saying why not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from entrenar_bench.cli.errors import UsageError


def read_yaml_option(path: Path | str, where: str) -> Any:
    """The parsed content of ``path``; UsageError naming ``where`` (e.g. ``--base FILE``) if it is
    missing or not valid YAML."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{where}: no such file")
    try:
        return yaml.safe_load(file.read_text())
    except yaml.YAMLError as e:
        raise UsageError(f"{where}: not valid YAML ({' '.join(str(e).split())[:160]})") from None
