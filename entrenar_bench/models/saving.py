"""A trained student on disk, in the form its users load it (``entrenar-bench export`` copies it from the run).

- A Hugging Face model (it has ``save_pretrained``): LoRA layers that peft's ``inject_adapter_in_model`` put in
  are merged into their base weights, ``W + (alpha / r) B A``, and replaced by the base layers (a model with
  injected adapters has no ``merge_and_unload``: each adapted layer merges itself); a model loaded from a GGUF
  file, which transformers refuses to serialise, has its (already dequantised) weights copied into a plain model
  of the same config; then ``save_pretrained`` (safetensors) with ``use_cache`` on for generation (in
  ``config.json`` and ``generation_config.json``), and the tokenizer of ``tokenizer_dir`` (its files and chat
  template) beside it, so ``AutoModelForCausalLM`` and ``AutoTokenizer`` load the directory as it is.
- Any other torch model: its weights as ``model.safetensors`` (shared tensors once) and, given, the config it is
  built from (its ``_target_`` node) as ``model_config.json``.

The directory is written beside its final place and renamed into it, so a killed run never leaves half a student.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

STUDENT_DIR = "student"  # <run dir>/student
WEIGHTS = "model.safetensors"
MODEL_CONFIG = "model_config.json"
HF_CONFIG = "config.json"  # what save_pretrained writes first: the directory holds a Hugging Face model
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")


def _is_hugging_face(model: nn.Module) -> bool:
    """A transformers model (which exists only once its modeling code is imported: asking the lazily imported
    ``transformers`` package for ``PreTrainedModel`` would import it, ~0.25 s of CPU, on a CNN run too)."""
    modeling = sys.modules.get("transformers.modeling_utils")
    return modeling is not None and isinstance(model, modeling.PreTrainedModel)


def _adapted(model: nn.Module) -> bool:
    return any(type(m).__module__.startswith("peft.") for m in model.modules())


def merge_lora(model: nn.Module) -> nn.Module:
    """``model`` (changed in place) with every injected adapter layer merged and replaced by its base layer."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge(safe_merge=True)
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, module.get_base_layer())
    return model


def _plain(model: nn.Module) -> nn.Module:
    """A model transformers can serialise: one loaded from GGUF (its weights dequantised, its quantizer a marker
    that forbids ``save_pretrained``) becomes a plain model of its config holding the same weights."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None or quantizer.is_serializable():
        return model
    method = getattr(quantizer.quantization_config, "quant_method", None)
    if getattr(method, "value", method) != "gguf":
        raise ValueError(f"the student is quantized with {getattr(method, 'value', method)}, which transformers "
                         "cannot save; train a student in a floating-point dtype to export it")
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(model)(config).to(dtype=model.dtype)
    plain.load_state_dict(model.state_dict())
    return plain


def _save_hugging_face(model: nn.Module, directory: Path, tokenizer_dir: Path | None) -> None:
    from transformers import AutoTokenizer

    model = _plain(merge_lora(copy.deepcopy(model)) if _adapted(model) else model)
    generation = getattr(model, "generation_config", None)  # generation_config.json: what generate() reads
    configs = [c for c in (model.config, generation) if c is not None]
    saved = [c.use_cache for c in configs]
    for c in configs:
        c.use_cache = True  # training switches it off; generation wants it
    try:
        model.save_pretrained(directory)  # transformers 5 writes safetensors only
    finally:
        for c, use_cache in zip(configs, saved):
            c.use_cache = use_cache
    if tokenizer_dir is not None:
        AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True).save_pretrained(directory)


def _save_state_dict(model: nn.Module, directory: Path, model_config: Mapping[str, Any] | None) -> None:
    from safetensors.torch import save_model

    model = merge_lora(copy.deepcopy(model)) if _adapted(model) else model
    directory.mkdir(parents=True)
    save_model(model, str(directory / WEIGHTS))
    if model_config is not None:
        (directory / MODEL_CONFIG).write_text(json.dumps(dict(model_config), indent=2, default=str))


def save_student(model: nn.Module, directory: Path | str, tokenizer_dir: Path | str | None = None,
                 model_config: Mapping[str, Any] | None = None) -> None:
    """Write ``model`` (LoRA merged; the model itself is left as it is) to ``directory``: ``save_pretrained``
    plus ``tokenizer_dir``'s tokenizer for a Hugging Face model, else ``model.safetensors`` plus
    ``model_config`` (the student's ``_target_`` config). An existing ``directory`` is replaced."""
    directory = Path(directory)
    partial = directory.with_name(f".{directory.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        if _is_hugging_face(model):
            _save_hugging_face(model, partial, Path(tokenizer_dir) if tokenizer_dir is not None else None)
        else:
            _save_state_dict(model, partial, model_config)
        shutil.rmtree(directory, ignore_errors=True)
        partial.rename(directory)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def saved_format(directory: Path) -> str | None:
    """``huggingface``, ``state_dict``, or None where ``directory`` holds no saved student."""
    if (directory / HF_CONFIG).is_file():
        return "huggingface"
    if (directory / WEIGHTS).is_file():
        return "state_dict"
    return None


def has_tokenizer(directory: Path) -> bool:
    return any((directory / name).is_file() for name in TOKENIZER_FILES)


def tokenizer_dir(data_config: Mapping[str, Any]) -> Path | None:
    """The tokenizer directory a data config names (``data.tokenizer``), or None: ``char`` ids, or a task of
    token ids only (the embedded Markov source)."""
    name = data_config.get("tokenizer")
    return Path(name) if isinstance(name, str) and name != "char" and Path(name).is_dir() else None
