"""Which models of a config come from a checkpoint, and what that means for fine-tuning.

A model node with a ``path`` (``pretrained_causal_lm``, ``from_teacher``, a converted GGUF) starts from
saved weights; one without is built from its config at random. A pretrained student is the base of its
own fine-tuning (``finetune=full|lora``): cost-performance fine-tunes the student the config names, used
as it is, never a hidden second base student pre-trained on the data. A separate base is used only where
one is named (``finetune.base.model``, as ``+experiment=lm`` does for its config-built students).
"""

from __future__ import annotations

from omegaconf import DictConfig


def is_pretrained(model_cfg: object) -> bool:
    """True for a model node that loads saved weights (it names a ``path``)."""
    return isinstance(model_cfg, DictConfig) and "path" in model_cfg


def uses_student_as_base(cfg: DictConfig) -> bool:
    """Fine-tuning with no separately named base, of a pretrained student: the student itself is the base,
    as it is (not trained on the data first, not copied into the model cache)."""
    finetune = cfg.get("finetune")
    return (finetune is not None and finetune.method != "none" and finetune.base.get("model") is None
            and is_pretrained(cfg.student.model))
