"""What a pruned student keeps, as configured, and the teacher's shape it is checked against.

    student:
      method: block_influence   # first | spread | list | block_influence | angular (depth)
      keep: 15                  # decoder layers kept (null: all of the teacher's)
      layers: null              # an explicit choice, as before: first:K, spread:K or [0, 5, 29]; when set it
                                # decides the layers whatever method and keep say (recorded as method list)
      calibration_blocks: 32    # training-split blocks the importance is measured on
      width:                    # Minitron's width pruning (Llama architecture), each null = not pruned
        mlp_ratio: null         # fraction of MLP intermediate neurons kept, in (0, 1]
        heads: null             # query heads kept: whole key/value groups (a multiple of heads per group)
        hidden_ratio: null      # fraction of hidden (embedding) channels kept, in (0, 1]
      params: null              # a parameter target: one ratio r for MLP neurons and hidden channels, solved
                                # so the student lands within 5 % of it

Every refusal is a ConfigError of one line naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from numbers import Real
from typing import Any

from entrenar_bench.errors import ConfigError

METHODS = ("first", "spread", "list", "block_influence", "angular")
IMPORTANCE_METHODS = ("block_influence", "angular")
WIDTH_ARCHITECTURES = ("llama",)  # model_type values whose modules width.py knows
PARAMS_TOLERANCE = 0.05


@dataclass(frozen=True)
class Shape:
    """A decoder-only teacher's sizes, from its ``config.json``."""

    model_type: str
    architecture: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    attention_bias: bool = False
    mlp_bias: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Shape:
        def first(*keys: str) -> int:
            return next((int(config[k]) for k in keys if isinstance(config.get(k), int)), 0)

        layers = first("num_hidden_layers", "n_layer", "num_layers")
        if layers < 1:
            raise ConfigError(f"student=from_teacher: cannot tell the teacher's number of layers from its config.json "
                              f"({config.get('model_type', '?')} model)")
        heads, hidden = first("num_attention_heads", "n_head") or 1, first("hidden_size", "n_embd")
        return cls(model_type=str(config.get("model_type", "?")),
                   architecture=",".join(config.get("architectures") or []) or "?", layers=layers, hidden=hidden,
                   intermediate=first("intermediate_size"), heads=heads,
                   kv_heads=first("num_key_value_heads") or heads, head_dim=first("head_dim") or hidden // heads,
                   vocab=first("vocab_size"), tied=bool(config.get("tie_word_embeddings", True)),
                   attention_bias=bool(config.get("attention_bias", False)),
                   mlp_bias=bool(config.get("mlp_bias", False)))

    @property
    def group(self) -> int:
        """Query heads per key/value group (GQA)."""
        return self.heads // self.kv_heads


def _number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class PruneSpec:
    """``student.*`` pruning settings (see the module docstring)."""

    method: str = "first"
    keep: int | None = None
    layers: Any = None
    calibration_blocks: int = 32
    mlp_ratio: float | None = None
    heads: int | None = None
    hidden_ratio: float | None = None
    params: int | None = None

    @classmethod
    def from_settings(cls, method: str | None = "first", keep: int | None = None, layers: Any = None,
                      calibration_blocks: int | None = 32, width: Mapping[str, Any] | None = None,
                      params: int | None = None) -> PruneSpec:
        width = dict(width or {})
        unknown = sorted(set(width) - {"mlp_ratio", "heads", "hidden_ratio"})
        if unknown:
            raise ConfigError(f"student.width.{unknown[0]}: no such setting (known: heads, hidden_ratio, mlp_ratio)")
        if layers is not None and not isinstance(layers, (str, int)):
            layers = list(layers)
        if method is not None and method not in METHODS:
            raise ConfigError(f"student.method must be one of {', '.join(METHODS)}, got {method!r}")
        method = "list" if layers is not None else method or "first"
        return cls(method=method, keep=keep, layers=layers,
                   calibration_blocks=32 if calibration_blocks is None else calibration_blocks,
                   mlp_ratio=width.get("mlp_ratio"), heads=width.get("heads"), hidden_ratio=width.get("hidden_ratio"),
                   params=params)

    def prunes_width(self) -> bool:
        return any(v is not None for v in (self.mlp_ratio, self.heads, self.hidden_ratio, self.params))

    def needs_calibration(self) -> bool:
        """Importance-ranked depth or any width pruning reads the teacher's activations on calibration blocks."""
        return self.layers is None and self.method in IMPORTANCE_METHODS or self.prunes_width()

    def kept_count(self, shape: Shape) -> int:
        return shape.layers if self.keep is None else self.keep

    def check(self, shape: Shape) -> None:
        """ConfigError (one line) for settings this teacher cannot meet; the layer list itself is checked where
        it is parsed (models/layers.select_layers)."""
        if self.method not in METHODS:
            raise ConfigError(f"student.method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.layers is None and self.method == "list":
            raise ConfigError("student.method=list needs student.layers (a list of the teacher's layer indices)")
        if self.layers is None and self.keep is not None and (not _integer(self.keep)
                                                              or not 1 <= self.keep <= shape.layers):
            raise ConfigError(f"student.keep={self.keep}: the teacher has {shape.layers} layers, "
                              f"so keep 1..{shape.layers}")
        if not _integer(self.calibration_blocks) or self.calibration_blocks < 1:
            raise ConfigError(f"student.calibration_blocks must be an integer >= 1, got {self.calibration_blocks!r}")
        for key in ("mlp_ratio", "hidden_ratio"):
            value = getattr(self, key)
            if value is not None and (not _number(value) or not 0 < value <= 1):
                raise ConfigError(f"student.width.{key} must be in (0, 1], got {value!r}")
        if not self.prunes_width():
            return
        if shape.model_type not in WIDTH_ARCHITECTURES:
            raise ConfigError(f"width pruning (student.width, student.params) knows {', '.join(WIDTH_ARCHITECTURES)} "
                              f"models; the teacher is a {shape.model_type} model ({shape.architecture})")
        if self.heads is not None and (not _integer(self.heads) or self.heads % shape.group
                                       or not shape.group <= self.heads <= shape.heads):
            raise ConfigError(f"student.width.heads={self.heads}: the teacher's {shape.heads} query heads form "
                              f"{shape.kv_heads} key/value groups of {shape.group}; keep a multiple of {shape.group} "
                              f"({shape.group}..{shape.heads})")
        if self.params is not None:
            if not _integer(self.params) or self.params < 1:
                raise ConfigError(f"student.params must be a parameter count (an integer >= 1), got {self.params!r}")
            if self.mlp_ratio is not None or self.hidden_ratio is not None:
                raise ConfigError("student.params sets the MLP and hidden widths itself: leave student.width.mlp_ratio "
                                  "and student.width.hidden_ratio null")

    def as_record(self) -> dict[str, Any]:
        return asdict(self)
