"""A setting's range or choices, declared once in its schema field's metadata, and the check made from it.

``setting(default, "int>=1")`` is a dataclass field whose ``metadata["rule"]`` says what values it takes:
``int>=N``, ``number>0``, ``number>=0``, ``unit`` (0 to 1 inclusive), ``fraction`` (strictly between 0 and
1), ``top_p`` (in (0, 1]), ``bool``, or a tuple of the allowed values. The schemas (``run/schema.py``,
``distill/settings.py``) declare each key's default, type and rule; :func:`check_node` checks a config node
against them, so no separate table of rules exists.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from functools import cache
from numbers import Real
from typing import Any

from entrenar_bench.errors import ConfigError

RULE = "rule"
Rule = str | tuple
RULE_WORDS = {"number>0": "> 0", "number>=0": ">= 0", "fraction": "between 0 and 1 (exclusive)",
              "unit": "between 0 and 1", "top_p": "in (0, 1]"}
_BOUNDS = {"number>0": lambda v: v > 0, "number>=0": lambda v: v >= 0, "fraction": lambda v: 0 < v < 1,
           "unit": lambda v: 0 <= v <= 1, "top_p": lambda v: 0 < v <= 1}


def setting(default: Any = dataclasses.MISSING, rule: Rule | None = None, *, factory: Any = dataclasses.MISSING):
    """A schema field: its default (or ``factory`` for a mutable one) and the rule its values obey."""
    return dataclasses.field(default=default, default_factory=factory, metadata={RULE: rule} if rule else {})


def words(rule: Rule) -> str:
    """What a rule asks for, as a message says it (``number>0`` -> ``> 0``)."""
    if isinstance(rule, tuple):
        return f"one of {', '.join(map(str, rule))}"
    return RULE_WORDS.get(rule, rule)


def check_value(value: Any, path: str, rule: Rule) -> None:
    """ConfigError (one line, naming ``path``) unless ``value`` obeys ``rule``."""
    if isinstance(rule, tuple):
        if value not in rule and str(value) not in rule:  # a number where names are numbers (precision 32)
            raise ConfigError(f"{path} must be one of {', '.join(map(str, rule))}, got {value!r}")
        return
    if rule == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{path} must be true or false, got {value!r}")
        return
    if rule.startswith("int>="):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path} must be an integer, got {value!r}")
        if value < int(rule[5:]):
            raise ConfigError(f"{path} must be >= {rule[5:]}, got {value}")
        return
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(f"{path} must be a number, got {value!r}")
    if not _BOUNDS[rule](value):
        raise ConfigError(f"{path} must be {RULE_WORDS[rule]}, got {value!r}")


@cache
def fields_of(schema: type) -> dict[str, tuple[Any, Rule | None]]:
    """A schema's fields: name -> (resolved type, rule or None)."""
    hints = typing.get_type_hints(schema)
    return {f.name: (hints[f.name], f.metadata.get(RULE)) for f in dataclasses.fields(schema)}


def nested_schema(annotation: Any) -> type | None:
    """The dataclass a field holds (``Optional[X]`` too), or None for a plain value."""
    candidates = typing.get_args(annotation) or (annotation,)
    return next((c for c in candidates if dataclasses.is_dataclass(c)), None)


def rule_at(schema: type, key: str) -> Rule | None:
    """The rule of a dotted key below ``schema`` (``train.lr`` -> ``number>0``); None if it has none."""
    head, _, rest = key.partition(".")
    annotation, rule = fields_of(schema).get(head, (None, None))
    if not rest:
        return rule
    inner = nested_schema(annotation)
    return rule_at(inner, rest) if inner else None


def check_node(node: Any, schema: type, prefix: str = "") -> None:
    """Check every key of ``node`` (a mapping) that ``schema`` gives a rule, recursing into nested schemas;
    a null value is left to the code's default."""
    if not isinstance(node, Mapping):
        return
    for name, (annotation, rule) in fields_of(schema).items():
        if name not in node or (value := node[name]) is None:  # `in` is False for a missing (???) value
            continue
        if rule is not None:
            check_value(value, f"{prefix}{name}", rule)
        elif (inner := nested_schema(annotation)) is not None:
            check_node(value, inner, f"{prefix}{name}.")


def defaults(schema: type) -> dict[str, Any]:
    """The schema's defaults as plain data (nested schemas as mappings; required fields left out)."""
    out = {}
    for f in dataclasses.fields(schema):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
            out[f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return out
