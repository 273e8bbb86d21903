"""Plain-text layout of the spec's reports."""

from __future__ import annotations


def table(headers: list[str], rows: list[list[str]]) -> str:
    """The spec's tables: ``Temp  | Accuracy | ...`` over a ``------|----------`` rule."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    fmt = lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(headers), "-|-".join("-" * w for w in widths), *(fmt(r) for r in rows)])


def title(text: str) -> str:
    return f"{text}\n{'=' * len(text)}"
