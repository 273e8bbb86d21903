"""The logit term a config chooses (``distill.logit_loss``): a registered name, or a user's dotted import path.

A logit term is called ``term(student_logits, teacher_logits, mask) -> 0-dim float tensor`` with ``losses.py``'s
conventions: (B, T, V) logits, the teacher's a tensor or a :class:`~entrenar_bench.distill.losses.TopKTeacher`
(its ``tail_rule`` already set from ``distill.top_k_tail``), a (B, T) mask or None (per-example tasks: each
example one token, (B, 1, V), no mask). The objective weighs it by α: ``(1−α)·CE + α·term``.

Its knobs are its own keyword parameters, each read from the distill settings by the name in :data:`KNOBS`:

    temperature  -> distill.temperature (1 when ablated: ``effective_temperature``)
    scale_t2     -> distill.temperature_scaling (Hinton's T², dropped by the ablation)
    beta         -> distill.beta
    lam          -> distill.skew_lambda
    chunk_tokens -> distill.loss_chunk_tokens

A registered term declares the knobs it reads (:data:`REGISTERED`: e.g. ``kl`` temperature and T², ``jsd`` β,
``skew_kl`` λ, ``mse`` none); a user's term is a dotted path (it holds a ``.``; resolved with Hydra's
``get_method``, ``components.py``) to either

- a function ``f(student_logits, teacher_logits, mask, **knobs)``: its keyword parameters named in
  :data:`KNOBS` get the settings' values on every call, or
- a class ``C(**knobs)`` (e.g. an ``nn.Module``, whose parameters then train with the student) whose instance
  is called ``(student_logits, teacher_logits, mask)``; its ``__init__`` parameters named in :data:`KNOBS` get
  the settings' values once.

Any other parameter keeps its own default (a parameter with none is refused before launch), so a user's term
adds no config key: its own knobs are its defaults. A new logit term is therefore one function or class and the
line ``logit_loss: my_module.my_term`` of a ``conf/distill`` file (or ``distill.logit_loss=...``).

Plain Python: the checks before launch import this without torch; a registered term's function is imported
(with torch) only when a run builds its objective, a user's module when it is checked.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from entrenar_bench.distill import components
from entrenar_bench.distill.settings import CROSS_LOSSES, DistillSettings

NONE = "none"  # no logit term: the student trained with CE (and feature terms) alone
LOSSES = "entrenar_bench.distill.losses."
INPUTS = ("student_logits", "teacher_logits", "mask")  # a term's three positional inputs, in this order
KNOBS: dict[str, Callable[[DistillSettings], Any]] = {
    "temperature": lambda s: s.effective_temperature,
    "scale_t2": lambda s: s.temperature_scaling,
    "beta": lambda s: s.beta,
    "lam": lambda s: s.skew_lambda,
    "chunk_tokens": lambda s: s.loss_chunk_tokens,
}


@dataclass(frozen=True)
class LogitTerm:
    """A registered logit term: the dotted path of its function and the knobs (:data:`KNOBS`) it reads."""

    target: str
    knobs: tuple[str, ...]


REGISTERED: dict[str, LogitTerm] = {
    "kl": LogitTerm(LOSSES + "forward_kl", ("temperature", "scale_t2", "chunk_tokens")),
    "reverse_kl": LogitTerm(LOSSES + "reverse_kl", ("temperature", "scale_t2", "chunk_tokens")),
    "jsd": LogitTerm(LOSSES + "jsd", ("temperature", "beta", "chunk_tokens")),
    "skew_kl": LogitTerm(LOSSES + "skew_kl", ("temperature", "lam", "chunk_tokens")),
    "skew_reverse_kl": LogitTerm(LOSSES + "skew_reverse_kl", ("temperature", "lam", "chunk_tokens")),
    "tvd": LogitTerm(LOSSES + "tvd", ("temperature", "chunk_tokens")),
    "mse": LogitTerm(LOSSES + "logit_mse", ("chunk_tokens",)),
}
CHOICES = (*REGISTERED, *CROSS_LOSSES, NONE)  # the names a config may give besides a dotted path


def is_path(name: str) -> bool:
    """A user's term (``module.function``), not a registered name."""
    return "." in name


def resolve(name: str) -> Callable[..., Any]:
    """The function or class ``name`` stands for (a registered name or a dotted path); ValueError, in one line,
    for an unknown name or a path that does not import to a callable."""
    if name in REGISTERED:
        return components.imported(REGISTERED[name].target)
    if is_path(name):
        return components.imported(name)
    raise ValueError(f"must be one of {', '.join(CHOICES)}, or the dotted import path of a function or class "
                     f"(module.name), got {name!r}")


def knobs_of(term: Callable[..., Any], name: str = "") -> tuple[str, ...]:
    """The :data:`KNOBS` a function or class reads, after checking its signature (``components.settable``): a
    function takes the three inputs positionally, a class's instance is called with them; every other parameter
    is a knob or has a default. ValueError (one line) otherwise."""
    where = name or getattr(term, "__qualname__", repr(term))
    knobs = []
    for p in components.settable(term, INPUTS, where):
        if p.name in KNOBS:
            knobs.append(p.name)
        elif p.default is p.empty:
            raise ValueError(f"{where}: parameter {p.name!r} is no distill knob ({', '.join(KNOBS)}) and has no "
                             "default")
    return tuple(knobs)


def knobs_for(name: str) -> tuple[str, ...]:
    """The knobs the term ``name`` reads: declared where registered, from its signature where a path (imported);
    none for ``none``."""
    if name == NONE:
        return ()
    if name in REGISTERED:
        return REGISTERED[name].knobs
    if name in CROSS_LOSSES:
        return ("temperature",)
    return knobs_of(resolve(name), name)


def check(name: str) -> None:
    """ValueError, in one line, unless ``name`` is ``none``, a registered term or an importable term with the
    expected signature."""
    knobs_for(name)


def tempered(name: str) -> bool:
    """Whether the term reads the temperature (a stored top-k teacher cannot be re-tempered for it)."""
    return "temperature" in knobs_for(name)


def build(settings: DistillSettings) -> Callable[..., Any] | None:
    """``settings.logit_loss`` as ``term(student_logits, teacher_logits, mask)``, its knobs bound from the settings
    (a class instantiated with them); None for ``none``."""
    name = settings.logit_loss
    if name == NONE:
        return None
    if name in CROSS_LOSSES:  # against a teacher aligned to another tokenization, reading the settings it needs
        from entrenar_bench.distill.cross_term import cross_divergence

        return partial(cross_divergence, settings)
    term = resolve(name)
    knobs = {knob: KNOBS[knob](settings) for knob in knobs_for(name)}
    return term(**knobs) if inspect.isclass(term) else partial(term, **knobs)
