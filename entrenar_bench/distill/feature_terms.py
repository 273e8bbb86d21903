"""The feature terms a config chooses: the task's own, each weighed by its ``distill`` key, and a user's, each
one entry of the config's root ``terms`` node naming its function or class by dotted path (torchtune-style).

A feature term is called ``term(student, teacher, mask) -> 0-dim float tensor`` on the two models'
:class:`~entrenar_bench.distill.objective.ModelOutputs` of the batch (``.logits``, ``.hidden``, ``.attentions``;
``teacher`` detached), ``mask`` the (B, T) target positions or None (per-example tasks); the objective adds
``weight · term`` to ``(1−α)·CE + α·logit_term`` and reports it under the term's name.

Built in (:data:`BUILT_IN`), built by the task to fit its models (``Task.feature_terms``, ``features.py``):

    layers    weight distill.layer_weight      layer matching (PKD); its projections train with the student
    attention weight distill.attention_weight  attention transfer (feature maps, or MiniLM's attention maps)

A user's term is one line of YAML (or a ``+terms.<name>={...}`` override)::

    terms:
      cosine: {_component_: my_module.CosineStates, weight: 0.5, layer: -1}

``_component_`` is the dotted path of a function ``f(student, teacher, mask, **knobs)`` or of a class
``C(**knobs)`` whose instance is called ``(student, teacher, mask)`` (an ``nn.Module``: its parameters train with
the student); ``__init__`` parameters named ``student`` and ``teacher`` receive the two models (to size a
projection). Every other key of the entry is a knob: a keyword parameter of the function or of ``__init__`` (a
parameter without a default must be given). The term says what it reads besides logits by the attributes
``needs_hidden`` / ``needs_attentions`` (absent: False); weight 0 turns it off. A user's term is run against the
teacher online (not its stored outputs), on the batch's own tokens (no on-policy or sequence-level batches, one
tokenization).

Plain Python (no torch here): checking a config imports a user's module, and only that.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from numbers import Real
from typing import Any

from omegaconf import OmegaConf

from entrenar_bench.distill import components
from entrenar_bench.distill.settings import DistillSettings, Term

BUILT_IN = {"layers": "layer_weight", "attention": "attention_weight"}  # the task's terms and their weight keys
COMPONENT, WEIGHT = "_component_", "weight"
INPUTS = ("student", "teacher", "mask")  # a term's three positional inputs, in this order
MODELS = ("student", "teacher")  # ``__init__`` parameters that receive the models
RESERVED = ("ce", "kd", "loss", *BUILT_IN)  # the objective's own names for its terms


def configured(node: Any) -> tuple[Term, ...]:
    """The config's root ``terms`` node (None: no terms) as :class:`Term` s, in its order, each checked:
    ``_component_`` imports to a function or class taking the inputs, ``weight`` a number >= 0, the other keys
    its parameters. ValueError, in one line naming the entry, otherwise. A term at weight 0 is off (as the task's
    own terms are): checked, then left out."""
    if node is None:
        return ()
    if OmegaConf.is_config(node):
        node = OmegaConf.to_container(node, resolve=True)
    if not isinstance(node, Mapping):
        raise ValueError(f"terms must map names to {{{COMPONENT}: module.name, {WEIGHT}: w, ...}}, got {node!r}")
    return tuple(term for term in (_term(str(name), entry) for name, entry in node.items()) if term.weight > 0)


def _term(name: str, entry: Any) -> Term:
    where = f"terms.{name}"
    if not name.isidentifier() or name.startswith("_") or name in RESERVED:
        raise ValueError(f"{where}: a term's name is an identifier other than {', '.join(RESERVED)}")
    if not isinstance(entry, Mapping) or not isinstance(entry.get(COMPONENT), str):
        raise ValueError(f"{where} must be {{{COMPONENT}: module.name (a function or class), {WEIGHT}: w, "
                         f"its knobs...}}, got {entry!r}")
    weight = entry.get(WEIGHT)
    if isinstance(weight, bool) or not isinstance(weight, Real) or not weight >= 0:
        raise ValueError(f"{where}.{WEIGHT} must be a number >= 0, got {weight!r}")
    target = entry[COMPONENT]
    try:
        component = components.imported(target)
    except ValueError as e:
        raise ValueError(f"{where}.{COMPONENT}: {e}") from None
    knobs = {key: value for key, value in entry.items() if key not in (COMPONENT, WEIGHT)}
    _check_knobs(component, knobs, where)
    return Term(name, target, float(weight), knobs, bool(getattr(component, "needs_hidden", False)),
                bool(getattr(component, "needs_attentions", False)))


def _check_knobs(component: Callable[..., Any], knobs: Mapping[str, Any], where: str) -> None:
    """Every knob names a parameter and every parameter without a default is given (the models, to a class)."""
    params = {p.name: p for p in components.settable(component, INPUTS, where)}
    models = MODELS if inspect.isclass(component) else ()
    unknown = [k for k in knobs if k in models or (k not in params and not components.takes_any_keyword(component))]
    if unknown:
        raise ValueError(f"{where}: {unknown[0]!r} is no knob of {_named(component)} (its knobs: "
                         f"{', '.join(k for k in params if k not in models) or 'none'})")
    missing = [p.name for p in params.values() if p.default is p.empty and p.name not in {*knobs, *models}]
    if missing:
        raise ValueError(f"{where}: {_named(component)} needs {missing[0]!r} (a key of the entry)")


def _named(component: Callable[..., Any]) -> str:
    return getattr(component, "__qualname__", repr(component))


@dataclass(frozen=True)
class FunctionTerm:
    """A user's function with its knobs bound, and what it reads of the models."""

    function: Callable[..., Any]
    needs_hidden: bool = False
    needs_attentions: bool = False

    def __call__(self, student: Any, teacher: Any, mask: Any) -> Any:
        return self.function(student, teacher, mask)


def instance(term: Term, student: Any, teacher: Any) -> Callable[..., Any]:
    """A user's term ready to call: its class instantiated with its knobs (and the models, where ``__init__``
    names them), or its function with its knobs bound."""
    component = components.imported(term.component)
    if not inspect.isclass(component):
        return FunctionTerm(partial(component, **term.knobs), term.needs_hidden, term.needs_attentions)
    names = {p.name for p in components.settable(component, INPUTS, term.name)}
    models = {name: model for name, model in zip(MODELS, (student, teacher)) if name in names}
    return component(**models, **term.knobs)


def build(settings: DistillSettings, task: Any, student: Any, teacher: Any) -> list[tuple[str, float, Any]]:
    """The configured feature terms as ``(name, weight, term)``: the task's own that ``settings`` weigh (> 0), in
    :data:`BUILT_IN`'s order, then the user's; ValueError when the models cannot give what one needs."""
    weights = {name: getattr(settings, key) for name, key in BUILT_IN.items() if getattr(settings, key) > 0}
    own = task.feature_terms(list(weights), student, teacher) if weights else {}
    return ([(name, weight, own[name]) for name, weight in weights.items()]
            + [(term.name, term.weight, instance(term, student, teacher)) for term in settings.terms])
