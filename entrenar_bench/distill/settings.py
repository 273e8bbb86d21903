"""What a distillation strategy sets: the weights of the objective's terms (``conf/distill/*.yaml``).

Plain data, no torch: the CLI and the Hydra parent process read and check settings
without loading the training stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from entrenar_bench.rules import setting

CROSS_LOSSES = ("uld", "gold")  # across two tokenizations, on aligned positions (distill/cross_term.py)
TEACHER_OUTPUTS = ("cached", "online")
TOP_K_TAILS = ("bucket", "drop", "spread")  # distill.top_k_tail (distill/losses.py TopKTeacher)
SCHEDULERS = ("cosine_epoch", "cosine", "linear", "constant")  # optim.scheduler (distill/optim.py)
STRATEGY_ORDER = ("kd", "progressive", "attention", "mse", "combined", "none")  # conf/distill, the spec's table order
DECODINGS = ("greedy", "beam", "sample")  # distill.seq_kd_decoding


@dataclass(frozen=True)
class Decoding:
    """How a model continues a prefix (``tasks/generation.py``): ``greedy`` (the argmax token each step),
    ``beam`` (beam search of width ``beams``: the continuation of highest total log-probability it finds;
    width 1 is greedy) or ``sample`` (ancestral sampling at ``temperature``, nucleus ``top_p``)."""

    method: str = "sample"
    beams: int = 1
    temperature: float = 1.0
    top_p: float = 1.0

    def key(self) -> dict:
        """The settings this method reads (what identifies its output, e.g. in a cache key)."""
        if self.method == "sample":
            return {"decoding": "sample", "temperature": self.temperature, "top_p": self.top_p}
        return {"decoding": self.method, "beams": self.beams if self.method == "beam" else 1}


@dataclass(frozen=True)
class Term:
    """A user's feature term, one entry ``terms.<name>`` of the config (``distill/feature_terms.py``): the dotted
    path of its function or class, its weight in the objective, its own knobs (keyword arguments) and what it
    reads of the models besides their logits."""

    name: str
    component: str
    weight: float
    knobs: dict[str, Any] = field(default_factory=dict)
    needs_hidden: bool = False
    needs_attentions: bool = False


@dataclass
class DistillSettings:
    """Also the ``distill`` schema (``entrenar_bench.run.schema``): a key not listed here is an error; each field's
    rule (``rules.setting``) is what the checks before launch hold its values to."""

    name: str = "kd"
    logit_loss: str = "kl"  # kl | reverse_kl | jsd | skew_kl | skew_reverse_kl | tvd | mse | none, or a user's term
    # as a dotted import path (module.function or module.Class): distill/logit_terms.py, which says what each reads;
    # uld | gold: teacher and student read the text through different tokenizers (distill/cross_term.py)
    temperature: float = setting(4.0, "number>0")
    alpha: float = setting(0.7, "unit")
    temperature_scaling: bool = setting(True, "bool")  # False: T forced to 1 and no T² (ablation)
    layer_weight: float = setting(0.0, "number>=0")
    attention_weight: float = setting(0.0, "number>=0")
    beta: float = setting(0.5, "unit")  # jsd: weight of the teacher in the mixture m = β·p + (1−β)·q
    skew_lambda: float = setting(0.1, "unit")  # skew_kl, skew_reverse_kl: DistiLLM's λ
    # cached: read the teacher's stored outputs (language models) | online
    teacher_outputs: str = setting("cached", TEACHER_OUTPUTS)
    # stored outputs: 0 = full logits (exact); k = top-k log-probs + the remaining mass (k >= the vocabulary: exact,
    # teacher_signal/sizing.py stored_top_k); null = by vocabulary (teacher_signal/sizing.py default_top_k: exact up
    # to 1,024 tokens, top-64 above)
    teacher_top_k: Optional[int] = setting(None, "int>=0")
    # a top-k teacher's tail in the loss: bucket (one category on both sides, a lower bound of the divergence) |
    # drop (renormalised over the k ids) | spread (evenly over the other V − k tokens)
    top_k_tail: str = setting("bucket", TOP_K_TAILS)
    # GKD's λ: the share of batches whose divergence is measured on the student's own samples
    on_policy: float = setting(0.0, "unit")
    seq_kd: bool = setting(False, "bool")  # sequence-level KD (Kim & Rush 2016): train on the teacher's continuations
    seq_kd_decoding: str = setting("greedy", DECODINGS)  # how the teacher decodes them (Kim & Rush: beam)
    seq_kd_beams: int = setting(4, "int>=1")  # beam width of seq_kd_decoding=beam
    # plain text: the prefix that generation continues (prompt/response data: the prompt)
    prompt_tokens: int = setting(8, "int>=1")
    new_tokens: int = setting(0, "int>=0")  # at most this many generated tokens a row; 0 = to the end of the block
    # sampling (on-policy batches, seq_kd_decoding=sample, sampled evaluation)
    sample_temperature: float = setting(1.0, "number>0")
    sample_top_p: float = setting(1.0, "top_p")
    gold_matched_weight: Optional[float] = setting(None, "number>=0")  # gold: JSD on matched tokens (null: their share)
    gold_unmatched_weight: Optional[float] = setting(None, "number>=0")  # gold: ULD on the rest (null: 1 − matched)
    # padded vocabularies: the teacher's largest mass allowed beyond the shared ids
    max_unshared_mass: float = setting(0.01, "unit")
    # positions per chunk of the token divergences (bounded memory); 0 = automatic
    loss_chunk_tokens: int = setting(0, "int>=0")
    terms: tuple[Term, ...] = field(default=(), metadata={"omegaconf_ignore": True})  # the user's feature terms,
    # from the config's root ``terms`` node (run/app.py distill_settings); no key of the distill schema

    @property
    def effective_temperature(self) -> float:
        return self.temperature if self.temperature_scaling else 1.0

    @property
    def needs_teacher(self) -> bool:
        return (self.logit_loss != "none" and self.alpha > 0) or self.needs_hidden or self.seq_kd or bool(self.terms)

    @property
    def needs_hidden(self) -> bool:
        """The models' hidden states or attentions are compared (the teacher runs online)."""
        return self.layer_weight > 0 or self.needs_attentions or any(t.needs_hidden for t in self.terms)

    @property
    def needs_attentions(self) -> bool:
        """Attention transfer, or a user's term that reads attention maps."""
        return self.attention_weight > 0 or any(t.needs_attentions for t in self.terms)

    @property
    def generates(self) -> bool:
        """Training needs sampled continuations: on-policy batches or the teacher's sequences."""
        return self.on_policy > 0 or self.seq_kd

    @property
    def sampling(self) -> Decoding:
        """The decoding of the student's own samples (on-policy batches, the sampled evaluation)."""
        return Decoding("sample", temperature=self.sample_temperature, top_p=self.sample_top_p)

    @property
    def seq_kd_decoder(self) -> Decoding:
        """The teacher's decoding of sequence-level KD's sequences."""
        if self.seq_kd_decoding == "sample":
            return self.sampling
        return Decoding(self.seq_kd_decoding, beams=self.seq_kd_beams if self.seq_kd_decoding == "beam" else 1)

    @property
    def seq_kd_key(self) -> dict:
        """What identifies sequence-level KD's stored sequences besides the data and the teacher: the prefix rule
        (``tasks/generation.py``: a pair's prompt, else ``prompt_tokens``), the length and the decoding's own
        settings (greedy's sequences do not change with the sampling temperature)."""
        return {"prefix": "pair-prompt-or-tokens", "prompt_tokens": self.prompt_tokens, "new_tokens": self.new_tokens,
                **self.seq_kd_decoder.key()}

    @property
    def uses_cached_outputs(self) -> bool:
        """The teacher's stored outputs stand in for it: logits only, on fixed training sequences, no user's term
        (those see the teacher run online), and not asked to run online."""
        return (self.needs_teacher and not self.needs_hidden and not self.generates and not self.terms
                and self.teacher_outputs == "cached")
