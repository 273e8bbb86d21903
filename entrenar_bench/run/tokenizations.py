"""Before launch: the logit term fits the tokenizations the teacher and the student read. One line, exit 2.

- ``distill.logit_loss=uld`` or ``gold`` align two tokenizations; where the data gives the student none of its
  own (no ``data.student_widths`` nor ``data.student_tokenizer``), teacher and student share one vocabulary and
  ``kl`` applies.
- Across two tokenizations, every other logit term (``kl``, ``mse``, …) compares the logits id by id and needs one
  vocabulary; layer matching, attention transfer and training on sampled continuations (on-policy, seq-KD) pair
  positions of one tokenization.
- ``data.student_tokenizer`` needs a student built for its vocabulary: a pretrained or from-teacher student keeps its
  own.
- ``uld``/``gold`` read from a top-k teacher store need ``k ≥ CROSS_MIN_TOP_K``: the tail spread evenly over the
  other ids is ULD's sorted tail and GOLD's unmatched mass, and at top-64 their gradients are far from the full
  teacher's (cosine 0.62 / 0.53; 1.00 / 0.995 at top-1024: docs/language-models.md).

Read from the config alone: nothing is loaded.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from entrenar_bench.distill.settings import CROSS_LOSSES
from entrenar_bench.errors import ConfigError
from entrenar_bench.models.layers import FROM_TEACHER
from entrenar_bench.models.pretrained import is_pretrained
from entrenar_bench.run.baseline import BASELINE

STUDENT_TOKENIZATION_KEYS = ("student_widths", "student_tokenizer")  # data keys that give the student its own
CROSS_MIN_TOP_K = 1024  # the smallest top-k store uld/gold read (module docstring)


def student_tokenization(data: DictConfig | None) -> str | None:
    """``data.<key>=<value>`` naming the student's own tokenization, or None (one tokenization)."""
    if not isinstance(data, DictConfig):
        return None
    key = next((k for k in STUDENT_TOKENIZATION_KEYS if data.get(k) is not None), None)
    return None if key is None else f"data.{key}={data.get(key)}"


def check_tokenizations(cfg: DictConfig) -> None:
    """ConfigError (one line) for a logit term or strategy that does not fit the tokenizations (module docstring)."""
    d = cfg.get("distill")
    if not isinstance(d, DictConfig):
        return
    loss = d.get("logit_loss")
    logits = loss not in (None, "none") and bool(d.get("alpha")) and d.get("name") != BASELINE  # none: run/baseline.py
    own = student_tokenization(cfg.get("data"))
    if own is None:
        if logits and loss in CROSS_LOSSES:
            raise ConfigError(f"distill.logit_loss={loss} aligns two tokenizations, but the teacher and the student "
                              "read one here (the data gives the student no tokenizer of its own): "
                              "distill.logit_loss=kl applies")
        return
    if logits and loss not in CROSS_LOSSES:
        raise ConfigError(f"distill.logit_loss={loss} (distill={d.get('name')}) compares the logits id by id and "
                          "needs one vocabulary, but the teacher and the student read different tokenizations "
                          f"({own}): "
                          "use distill.logit_loss=uld or gold")
    student = OmegaConf.select(cfg, "student.model")
    if OmegaConf.select(cfg, "data.student_tokenizer") is not None and isinstance(student, DictConfig) and \
            (student.get("_target_") == FROM_TEACHER or is_pretrained(student)):
        raise ConfigError(f"{own} gives the student a vocabulary of its own, but student={cfg.student.get('name')} "
                          "keeps another (a pretrained or from-teacher model): give a student built from a config "
                          "(e.g. student=llama_small, as +experiment=smollm2_cross does)")
    features = [f"distill.{k}" for k in ("layer_weight", "attention_weight", "on_policy", "seq_kd") if d.get(k)]
    features += [f"terms.{name}" for name in cfg.get("terms") or ()]
    if features:
        raise ConfigError(f"{features[0]} (distill={d.get('name')}) pairs positions of one tokenization, but "
                          f"the teacher and the student read different ones ({own})")
    top_k = d.get("teacher_top_k")
    if logits and d.get("teacher_outputs") == "cached" and top_k and top_k < CROSS_MIN_TOP_K:
        raise ConfigError(f"distill.logit_loss={loss} from a top-{top_k} teacher store is far from the full teacher "
                          f"(gradient cosine 0.53-0.62 at top-64): set "
                          f"distill.teacher_top_k={CROSS_MIN_TOP_K} (or more) or distill.teacher_outputs=online")
