"""The stored forms and their sizes: what a store of the teacher's signal costs, decided before it exists.

Two forms, named by :func:`form_name`: ``exact`` (the logits, ``V × 4`` bytes per position in float32) and
``top<k>`` (the k largest log-probabilities at T = 1 as float16, their int32 ids and the float32 tail mass:
``6k + 4`` bytes per position, 388 at k = 64; a causal LM's also keeps the log-prob of the token read next, 4 more,
392). Exact is the default up to :data:`EXACT_MAX_VOCAB` tokens,
top-64 above (:func:`default_top_k`).

Log-probabilities stored at T = 1 cannot be re-tempered: ``softmax(log p / T)`` needs each temperature's
log-partition over the whole vocabulary, tail included, which the top-k form does not keep. A top-k store that
stands in for the teacher at a temperature other than 1 is therefore refused (:func:`check_temperature`), with
the exact form's size as the alternative. Plain Python: the checks before launch import it without torch.
"""

from __future__ import annotations

from entrenar_bench.distill import logit_terms
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.errors import ConfigError

DEFAULT_TOP_K = 64  # the top-k form's k: 388 bytes per position
EXACT_MAX_VOCAB = 1024  # the largest vocabulary stored exact by default: above it exact is ≥ 10× top-64
GB = 1e9  # limits.max_teacher_store_gb and the printed sizes are decimal


def stored_top_k(settings: DistillSettings, vocab_size: int) -> int:
    """The stored form's k: ``distill.teacher_top_k``, or by vocabulary size where it is null (0: exact); a k that
    keeps every token (k >= V) is the exact form, which holds the same distribution in fewer bytes."""
    if settings.teacher_top_k is None:
        return default_top_k(vocab_size)
    return 0 if settings.teacher_top_k >= vocab_size else settings.teacher_top_k


def tempers_stored_teacher(settings: DistillSettings) -> bool:
    """Whether a stored teacher would stand in for it at a temperature other than 1 (before the task is known:
    augmentation and a data module without row indices can still make the run online)."""
    return (settings.uses_cached_outputs and settings.effective_temperature != 1
            and logit_terms.tempered(settings.logit_loss))


def tempered_top_k(settings: DistillSettings, vocab_size: int | None) -> int:
    """Before launch: the k of a top-k store the loss would temper at T ≠ 1 (0: none, or not known from the
    config — a null ``teacher_top_k`` over a vocabulary only the job knows, whose plan checks it again)."""
    if not tempers_stored_teacher(settings) or (settings.teacher_top_k is None and vocab_size is None):
        return 0
    if vocab_size is None:  # a k set over a vocabulary only the job knows (its plan applies k >= V: exact)
        return settings.teacher_top_k
    return stored_top_k(settings, vocab_size)


def form_name(top_k: int) -> str:
    """``exact`` or ``top<k>``: the one place the form's name is made."""
    return f"top{top_k}" if top_k else "exact"


def default_top_k(vocab_size: int) -> int:
    """The default form by vocabulary: exact (0) up to :data:`EXACT_MAX_VOCAB` tokens, top-64 above.

    Exact costs no approximation and, up to 1,024 tokens, at most 4 KB per position (128 B for the embedded
    32-token task, less than top-64's 388 B); above, it grows to ≥ 10× the top-64 form (190 KB per position
    at 49,152 tokens)."""
    return DEFAULT_TOP_K if vocab_size > EXACT_MAX_VOCAB else 0


def bytes_per_position(vocab_size: int, top_k: int, logits_bytes: int = 4, targets: bool = False) -> int:
    """``V × logits_bytes`` (exact) or ``k × (4 + 2) + 4`` (top-k: int32 ids, float16 log-probs, the tail), 4 more
    with ``targets`` (the float32 log-prob of the token read next: ``shards.Layout.targets``)."""
    return 6 * min(top_k, vocab_size) + 4 + 4 * targets if top_k else vocab_size * logits_bytes


def estimate_bytes(positions: int, vocab_size: int, top_k: int, logits_bytes: int = 4, targets: bool = False) -> int:
    """The store's size for ``positions`` positions (rows × positions per row), less a .npy header per file."""
    return positions * bytes_per_position(vocab_size, top_k, logits_bytes, targets)


def human_bytes(size: float) -> str:
    """``1.21 GB``: three significant digits, decimal units."""
    for unit, scale in (("TB", 1e12), ("GB", GB), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size:.0f} B"


def describe_size(positions: int, vocab_size: int, top_k: int, logits_bytes: int = 4, targets: bool = False) -> str:
    """``top64 teacher store: 100,096 positions × 388 B = 38.8 MB`` (printed before the first job)."""
    per = bytes_per_position(vocab_size, top_k, logits_bytes, targets)
    return (f"{form_name(top_k)} teacher store: {positions:,} positions × {per:,} B = "
            f"{human_bytes(estimate_bytes(positions, vocab_size, top_k, logits_bytes, targets))}")


class StoreTooLarge(ConfigError, ValueError):
    """The store would pass ``limits.max_teacher_store_gb``: one line, exit code 2, nothing run."""


def check_store_size(positions: int, vocab_size: int, top_k: int, limit_gb: float, logits_bytes: int = 4,
                     targets: bool = False) -> int:
    """The estimated size in bytes, or :class:`StoreTooLarge` (one line giving the size and, for the exact
    form, the top-k alternative) where it passes ``limit_gb``."""
    size = estimate_bytes(positions, vocab_size, top_k, logits_bytes, targets)
    if size <= limit_gb * GB:
        return size
    hint = (f"the top-{DEFAULT_TOP_K} form would take "
            f"{human_bytes(estimate_bytes(positions, vocab_size, DEFAULT_TOP_K))}: set distill.teacher_top_k="
            f"{DEFAULT_TOP_K}" if not top_k else "store fewer positions or raise the limit")
    raise StoreTooLarge(f"{describe_size(positions, vocab_size, top_k, logits_bytes, targets)}, above "
                        f"limits.max_teacher_store_gb={limit_gb:g}; {hint}")


class TopKAtTemperature(ConfigError, ValueError):
    """A top-k store standing in for the teacher at T ≠ 1: one line naming the exact form and its size."""


def check_temperature(positions: int, vocab_size: int, top_k: int, temperature: float) -> None:
    """:class:`TopKAtTemperature` where a top-k store (``top_k`` > 0, whether set or defaulted by vocabulary)
    would be tempered at ``temperature`` ≠ 1: its targets would be those of the flattened teacher (on a peaked
    49k-token teacher, forward KL −17 % and gradient cosine 0.89 at T = 2; cosine −0.13 at T = 4)."""
    if not top_k or temperature == 1:
        return
    raise TopKAtTemperature(
        f"distill.temperature={temperature:g} with a {form_name(top_k)} teacher store: log-probabilities stored at "
        f"T = 1 cannot be re-tempered exactly; use the exact store, distill.teacher_top_k=0 "
        f"({human_bytes(estimate_bytes(positions, vocab_size, 0))} for {positions:,} positions), "
        f"or distill.temperature=1, or distill.teacher_outputs=online")
