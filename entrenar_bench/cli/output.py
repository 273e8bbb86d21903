"""Shared options and output: JSON alone on stdout, or the text report."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

FORMATS = ("text", "json")


def add_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format: text, json (default: text)")


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


def table(headers: list[str], rows: list[list[str]]) -> str:
    """The spec's plain tables: ``Temp  | Accuracy | ...`` with a ``------|----`` rule."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    rule = "-|-".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def title(text: str) -> str:
    return f"{text}\n{'=' * len(text)}"
