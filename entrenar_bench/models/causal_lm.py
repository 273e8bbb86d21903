"""Hugging Face causal language models as teachers and students, from a config or a local directory.

    model:                                   # conf/teacher/llama_tiny.yaml: built from a config
      _target_: entrenar_bench.models.causal_lm.causal_lm
      config: {_target_: transformers.LlamaConfig, hidden_size: 64, num_hidden_layers: 2, ...}

    model:                                   # your own model, saved with save_pretrained
      _target_: entrenar_bench.models.causal_lm.pretrained_causal_lm
      path: /models/my-student

Both take ``vocab_size`` from the data module (``model_kwargs()``). A model built from a config gets
the data's vocabulary and no pad/bos/eos ids (transformers 5 rejects ids outside a small vocabulary);
a pretrained model must already cover the data's vocabulary. Nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn
from transformers import AutoModelForCausalLM, PretrainedConfig, PreTrainedModel

from entrenar_bench.models.model_files import model_config

SPECIAL_TOKENS = ("pad_token_id", "bos_token_id", "eos_token_id")
EAGER = "eager"  # the attention implementation that returns attention probabilities


def causal_lm(config: PretrainedConfig, vocab_size: int | None = None,
              attn_implementation: str = "sdpa") -> PreTrainedModel:
    """A randomly initialised ``AutoModelForCausalLM`` of ``config`` (e.g. a ``LlamaConfig``), sized to the data."""
    if vocab_size is not None:
        config.vocab_size = vocab_size
        for name in SPECIAL_TOKENS:
            setattr(config, name, None)
    config.use_cache = False
    return AutoModelForCausalLM.from_config(config, attn_implementation=attn_implementation)


def pretrained_causal_lm(path: str, vocab_size: int | None = None,
                         attn_implementation: str = "sdpa") -> PreTrainedModel:
    """``AutoModelForCausalLM.from_pretrained`` of a local directory (local files only, safetensors only)."""
    model_config(Path(path), f"model.path={path}")  # safetensors weights, no code of its own, else one line
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, use_safetensors=True,
                                                 attn_implementation=attn_implementation)
    size = model.get_input_embeddings().num_embeddings
    if vocab_size is not None and vocab_size > size:
        raise ValueError(f"the model in {path} has {size} token embeddings, "
                         f"fewer than the data's vocabulary ({vocab_size})")
    model.config.use_cache = False
    return model


def use_eager_attention(*models: nn.Module | None) -> None:
    """Switch models to eager attention, the implementation that can return attention probabilities."""
    for model in models:
        if model is not None and model.config._attn_implementation != EAGER:
            model.set_attn_implementation(EAGER)


def attention_and_mlp_projections(model: nn.Module) -> list[str]:
    """Names (last part) of every Linear, or transformers ``Conv1D`` (GPT-2), but the output head: the
    attention and MLP projections, LoRA's default targets on a causal LM."""
    head = model.get_output_embeddings()
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if (isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D") and module is not head})
