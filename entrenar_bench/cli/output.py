"""Output: JSON alone on stdout, or the text report."""

from __future__ import annotations

import json
import math
from typing import Any

from entrenar_bench.errors import OutputError


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return _finite(value.item())
    return value


def emit(fmt: str, document: dict[str, Any], text: str) -> None:
    """Print the report: with ``--format json`` stdout holds only the JSON document."""
    if fmt == "json":
        print(json.dumps(_finite(document), indent=2))
    else:
        print(text)


def fail_if_unwritten(unwritten) -> None:
    """After the report is printed: an output that could not be written is one line and exit code 2."""
    if unwritten:
        more = f" (and {len(unwritten) - 1} more)" if len(unwritten) > 1 else ""
        raise OutputError(f"the report above was printed, but {unwritten[0]}{more}")
