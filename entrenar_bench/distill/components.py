"""A loss term given by dotted path (a user's function or class): imported, and its signature read.

Shared by the logit terms (``logit_terms.py``) and the feature terms (``feature_terms.py``): a term is either a
function whose first parameters are its inputs, or a class whose instance is called with them (``forward`` of
an ``nn.Module``, else ``__call__``); the parameters left (the function's after its inputs, the class's
``__init__``'s) are what a config may set. Plain Python: the term's module is imported only when asked for.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any


@contextmanager
def _quiet_hydra() -> Iterator[None]:
    """Hydra's ``get_method`` logs its failure at ERROR before raising; the refusal here is one line."""
    logger = logging.getLogger("hydra.utils")
    disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = disabled


def imported(target: str) -> Callable[..., Any]:
    """The function or class at the dotted path ``target`` (Hydra's ``get_method``); ValueError, in one line, for
    a path that does not import to a callable."""
    from hydra.utils import get_method

    try:
        with _quiet_hydra():
            return get_method(target)
    except Exception as e:  # noqa: BLE001 (ImportError, AttributeError, ValueError: each says why)
        raise ValueError(f"cannot import {target!r} ({' '.join(str(e).split())[:200]})") from None


def _parameters(fn: Callable[..., Any], skip: int) -> list[inspect.Parameter]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError) as e:
        raise ValueError(f"{getattr(fn, '__qualname__', fn)!r} has no inspectable signature ({e})") from None
    return params[skip:]


def settable(term: Callable[..., Any], inputs: Sequence[str], where: str) -> list[inspect.Parameter]:
    """The parameters of ``term`` a config may set, after checking that it takes ``inputs`` positionally (a
    class: its instance's call); ``*args``/``**kwargs`` left out. ValueError (one line) otherwise."""
    if inspect.isclass(term):
        call = getattr(term, "forward", None) or term.__call__
        takes, own = _parameters(call, 1), _parameters(term, 0)
    else:
        takes = own = _parameters(term, 0)
    positional = [p for p in takes if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < len(inputs) and not any(p.kind is p.VAR_POSITIONAL for p in takes):
        raise ValueError(f"{where} must take ({', '.join(inputs)}) positionally, takes "
                         f"({', '.join(p.name for p in positional)})")
    rest = own[len(inputs):] if own is takes else own
    return [p for p in rest if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def takes_any_keyword(term: Callable[..., Any]) -> bool:
    """Whether ``term`` (a class: its ``__init__``) takes ``**kwargs``."""
    return any(p.kind is p.VAR_KEYWORD for p in _parameters(term, 0))
