"""What a distillation strategy sets: the weights of the objective's terms (``conf/distill/*.yaml``).

Plain data, no torch: the CLI and the Hydra parent process read and check settings
without loading the training stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

LOGIT_LOSSES = ("kl", "reverse_kl", "jsd", "skew_kl", "skew_reverse_kl", "tvd", "mse", "uld", "gold", "none")
CROSS_LOSSES = ("uld", "gold")  # across two tokenizations, on aligned positions (distill/cross_term.py)
TEACHER_OUTPUTS = ("cached", "online")
TOP_K_TAILS = ("bucket", "drop", "spread")  # distill.top_k_tail (distill/losses.py TopKTeacher)
SCHEDULERS = ("cosine_epoch", "cosine", "linear", "constant")  # optim.scheduler (distill/optim.py)
STRATEGY_ORDER = ("kd", "progressive", "attention", "mse", "combined", "none")  # conf/distill, the spec's table order


@dataclass
class DistillSettings:
    """Also the ``distill`` schema (``entrenar_bench.run.schema``): a key not listed here is an error."""

    name: str = "kd"
    logit_loss: str = "kl"  # kl | reverse_kl | jsd | skew_kl | skew_reverse_kl | tvd | mse | none (losses.py)
    # | uld | gold: teacher and student read the text through different tokenizers (distill/cross_term.py)
    temperature: float = 4.0
    alpha: float = 0.7
    temperature_scaling: bool = True  # False: T forced to 1 and no T² (ablation)
    layer_weight: float = 0.0
    attention_weight: float = 0.0
    beta: float = 0.5  # jsd: weight of the teacher in the mixture m = β·p + (1−β)·q
    skew_lambda: float = 0.1  # skew_kl, skew_reverse_kl: DistiLLM's λ
    teacher_outputs: str = "cached"  # cached: read the teacher's stored outputs (language models) | online
    teacher_top_k: Optional[int] = None  # stored outputs: 0 = full logits (exact); k = top-k log-probs + the remaining
    # mass; null = by vocabulary (teacher_signal/sizing.py default_top_k: exact up to 1,024 tokens, top-64 above)
    top_k_tail: str = "bucket"  # a top-k teacher's tail in the loss: bucket (one category on both sides, a lower
    # bound of the divergence) | drop (renormalised over the k ids) | spread (evenly over the other V − k tokens)
    on_policy: float = 0.0  # GKD's λ: the share of batches whose continuations the student samples itself
    seq_kd: bool = False  # sequence-level KD (Kim & Rush 2016): train on the teacher's sampled continuations
    prompt_tokens: int = 8  # the prefix of each sequence that generation continues
    new_tokens: int = 0  # tokens generated after it; 0 = to the end of the sequence
    sample_temperature: float = 1.0  # sampling of continuations (on-policy, seq_kd, sampled evaluation)
    sample_top_p: float = 1.0
    gold_matched_weight: Optional[float] = None  # gold: weight of the JSD on matched tokens (null: their share)
    gold_unmatched_weight: Optional[float] = None  # gold: weight of ULD on the rest (null: 1 − the matched weight)
    max_unshared_mass: float = 0.01  # padded vocabularies: the teacher's largest mass allowed beyond the shared ids
    loss_chunk_tokens: int = 0  # positions per chunk of the token divergences (bounded memory); 0 = automatic

    @property
    def effective_temperature(self) -> float:
        return self.temperature if self.temperature_scaling else 1.0

    @property
    def needs_teacher(self) -> bool:
        return (self.logit_loss != "none" and self.alpha > 0) or self.needs_hidden or self.seq_kd

    @property
    def needs_hidden(self) -> bool:
        return self.layer_weight > 0 or self.attention_weight > 0

    @property
    def generates(self) -> bool:
        """Training needs sampled continuations: on-policy batches or the teacher's sequences."""
        return self.on_policy > 0 or self.seq_kd

    @property
    def uses_cached_outputs(self) -> bool:
        """The teacher's stored outputs stand in for it: logits only, on fixed training sequences, and not asked
        to run online."""
        return self.needs_teacher and not self.needs_hidden and not self.generates and self.teacher_outputs == "cached"
