"""A student made from a pretrained teacher: a chosen list of its layers, initialised with their weights.

The DistilBERT (Sanh et al. 2019) / Minitron (Muralidharan et al. 2024) initialisation: the student has
the teacher's architecture with fewer decoder layers; its layer j starts as the teacher's layer
``layers[j]``, and the embeddings, the final norm and the output head are the teacher's. So it shares the
teacher's tokenizer and vocabulary by construction.

    student:                      # conf/student/from_teacher.yaml
      layers: first:6             # or spread:6 (first and last kept, evenly between), or [0, 5, 10, 29]
      model:
        _target_: entrenar_bench.models.from_teacher.from_teacher
        path: ${teacher.model.path}
        layers: ${..layers}
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

from entrenar_bench.models.layers import select_layers
from entrenar_bench.models.model_files import model_config


def decoder_layers(model: nn.Module) -> str:
    """The name of the model's stack of decoder layers: its ModuleList as long as ``num_hidden_layers``."""
    n = model.config.num_hidden_layers
    found = [name for name, module in model.named_modules() if isinstance(module, nn.ModuleList) and len(module) == n]
    if len(found) != 1:
        raise ValueError(f"cannot tell the decoder layers of {type(model).__name__} "
                         f"({len(found)} module lists of {n} layers)")
    return found[0]


def student_state(teacher_state: dict[str, torch.Tensor], stack: str, chosen: list[int]) -> dict[str, torch.Tensor]:
    """The student's weights: the chosen teacher layers renumbered 0..k-1, every weight outside the stack as is."""
    prefix = f"{stack}."
    state = {}
    for key, value in teacher_state.items():
        if not key.startswith(prefix):
            state[key] = value
            continue
        index, _, rest = key[len(prefix):].partition(".")
        if int(index) in chosen:
            state[f"{prefix}{chosen.index(int(index))}.{rest}"] = value
    return state


def from_teacher(path: str, layers: str | int | Sequence[int], vocab_size: int | None = None,
                 attn_implementation: str = "sdpa") -> PreTrainedModel:
    """The student of ``layers`` of the teacher saved in ``path`` (float32, every weight copied)."""
    directory = Path(path)
    model_config(directory, f"student.model.path={path}")  # a safe directory: safetensors, no code of its own
    teacher = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, use_safetensors=True,
                                                   dtype=torch.float32, attn_implementation=attn_implementation)
    stack = decoder_layers(teacher)
    chosen = select_layers(layers, teacher.config.num_hidden_layers)
    config = AutoConfig.from_pretrained(directory, local_files_only=True)
    config.num_hidden_layers = len(chosen)
    if isinstance(getattr(config, "layer_types", None), list):  # per-layer kinds (sliding or full attention)
        config.layer_types = [config.layer_types[i] for i in chosen]
    config.use_cache = False
    student = AutoModelForCausalLM.from_config(config, attn_implementation=attn_implementation, dtype=torch.float32)
    student.load_state_dict(student_state(teacher.state_dict(), stack, chosen), strict=True)
    rows = student.get_input_embeddings().num_embeddings
    if vocab_size is not None and vocab_size > rows:
        raise ValueError(f"the teacher in {path} has {rows} token embeddings, fewer than the data's vocabulary "
                         f"({vocab_size})")
    student.config.teacher_layers = chosen  # saved with the student: where its layers came from
    return student
