"""A student made from a pretrained teacher: some of its layers, possibly narrower, initialised with its weights.

The DistilBERT (Sanh et al. 2019) / Minitron (Muralidharan et al. 2024) initialisation: the student has
the teacher's architecture with fewer decoder layers; its layer j starts as the teacher's layer
``layers[j]``, and the embeddings, the final norm and the output head are the teacher's. So it shares the
teacher's tokenizer and vocabulary by construction. Which layers, and how wide (Llama architecture: MLP
neurons, key/value groups, hidden channels), is ``models/pruning``'s: by position or by the teacher's
activations on calibration blocks of the training split.

    student:                      # conf/student/from_teacher.yaml
      method: block_influence     # first | spread | list | block_influence | angular
      keep: 15                    # layers kept
      layers: null                # or first:6, spread:6, [0, 5, 10, 29] as before (method list)
      calibration_blocks: 32
      width: {mlp_ratio: null, heads: null, hidden_ratio: null}
      params: null                # or a parameter target (within 5 %)

What was pruned is ``student.config.pruning`` (saved with the student, recorded with the run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

from entrenar_bench.errors import ConfigError
from entrenar_bench.files import content_digest, write_atomic
from entrenar_bench.models.layers import select_layers
from entrenar_bench.models.model_files import model_config
from entrenar_bench.models.pruning.cache import cache_directory, cached
from entrenar_bench.models.pruning.calibration import Calibration, calibration_digest
from entrenar_bench.models.pruning.depth import ranked_layers
from entrenar_bench.models.pruning.importance import Importance, measure
from entrenar_bench.models.pruning.spec import WIDTH_ARCHITECTURES, PruneSpec, Shape
from entrenar_bench.models.pruning.sizes import Widths, full_widths, param_count, target_widths
from entrenar_bench.models.pruning.width import kept_units, prune_state, pruned_config


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


def chosen_layers(spec: PruneSpec, shape: Shape, importance: Importance | None) -> tuple[list[int], list[float] | None]:
    """The kept teacher layers and, for an importance method, the scores they were chosen by."""
    try:
        if spec.layers is not None:
            return select_layers(spec.layers, shape.layers), None
        if spec.method in ("first", "spread"):
            return select_layers(f"{spec.method}:{spec.kept_count(shape)}", shape.layers), None
    except ValueError as e:
        raise ConfigError(f"student.{e}") from None
    return ranked_layers(spec.method, spec.kept_count(shape), importance)


def student_config(directory: Path, chosen: list[int], shape: Shape, widths: Widths):
    """The teacher's config with the chosen layers (per-layer kinds kept with them) at ``widths``."""
    config = AutoConfig.from_pretrained(directory, local_files_only=True)
    config.num_hidden_layers = len(chosen)
    if isinstance(getattr(config, "layer_types", None), list):  # per-layer kinds (sliding or full attention)
        config.layer_types = [config.layer_types[i] for i in chosen]
    if widths != full_widths(shape):
        pruned_config(config, shape, widths)
    config.use_cache = False
    return config


def pruned_state(teacher: PreTrainedModel, shape: Shape, chosen: list[int], widths: Widths,
                 importance: Importance | None) -> tuple[dict[str, torch.Tensor], list[list[int]] | None]:
    """The student's weights (the chosen layers renumbered, cut to ``widths`` by importance) and the key/value
    groups each kept layer keeps (None where the width is the teacher's)."""
    stack = decoder_layers(teacher)
    state = student_state(teacher.state_dict(), stack, chosen)
    if widths == full_widths(shape):
        return state, None
    kept = kept_units(importance.mlp[chosen], importance.heads[chosen], importance.hidden, shape, widths)
    return prune_state(state, stack, shape, kept), [g.tolist() for g in kept.groups]


def from_teacher(path: str, layers: str | int | Sequence[int] | None = None, method: str = "first",
                 keep: int | None = None, calibration_blocks: int = 32, width: Mapping | None = None,
                 params: int | None = None, cache_dir: str | None = None, calibration: Calibration | None = None,
                 vocab_size: int | None = None, attn_implementation: str = "sdpa") -> PreTrainedModel:
    """The student of the teacher saved in ``path`` pruned as the settings say (float32). Importance is measured
    on ``calibration(calibration_blocks)`` (the training split's blocks); importance and pruned weights are
    cached under ``cache_dir`` by content."""
    directory = Path(path)
    shape = Shape.from_config(model_config(directory, f"student.model.path={path}"))  # safetensors, no code of its own
    spec = PruneSpec.from_settings(method, keep, layers, calibration_blocks, width, params)
    spec.check(shape)

    @cache
    def teacher() -> PreTrainedModel:
        return AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, use_safetensors=True,
                                                    dtype=torch.float32, attn_implementation=attn_implementation)

    importance, key, tokens = None, None, None
    if spec.needs_calibration():
        if calibration is None:
            raise ConfigError(f"student.method={spec.method} (or width pruning) needs calibration blocks from the "
                              "training data; build the student through the run (its data module gives them)")
        try:
            ids, mask = calibration(spec.calibration_blocks)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        key = {"teacher": content_digest(directory), "calibration": calibration_digest(ids, mask)}
        importance = cached(cache_directory(cache_dir, key), "importance.pt",
                            lambda: measure(teacher(), teacher().get_submodule(decoder_layers(teacher())), ids, mask),
                            Importance.save, Importance.load)
        tokens = importance.tokens
    chosen, scores = chosen_layers(spec, shape, importance)
    widths = target_widths(shape, spec, len(chosen)) if spec.prunes_width() else full_widths(shape)
    config = student_config(directory, chosen, shape, widths)
    student = AutoModelForCausalLM.from_config(config, attn_implementation=attn_implementation, dtype=torch.float32)
    target = {**(key or {"teacher": str(directory)}), "layers": chosen, "widths": widths.as_record()}
    weights_dir = cache_directory(cache_dir, target) if key is not None else None
    state, groups = cached(weights_dir, "student.pt",
                           lambda: pruned_state(teacher(), shape, chosen, widths, importance),
                           save_state, load_state)
    student.load_state_dict(state, strict=True)
    rows = student.get_input_embeddings().num_embeddings
    if vocab_size is not None and vocab_size > rows:
        raise ValueError(f"the teacher in {path} has {rows} token embeddings, fewer than the data's vocabulary "
                         f"({vocab_size})")
    student.config.teacher_layers = chosen  # saved with the student: where its layers came from
    student.config.pruning = {
        **{("params_target" if k == "params" else k): v for k, v in spec.as_record().items()},
        "layers": chosen, "keep": len(chosen), "scores": scores,
        "widths": widths.as_record(), "kept_groups": groups, "params": sum(p.numel() for p in student.parameters()),
        "teacher_params": param_count(shape, shape.layers, full_widths(shape))
        if shape.model_type in WIDTH_ARCHITECTURES else None, "teacher_depth": shape.layers,
        "teacher_widths": full_widths(shape).as_record(),
        "calibration_blocks": spec.calibration_blocks if importance is not None else None,
        "calibration_tokens": tokens, "cache": str(weights_dir) if weights_dir is not None else None,
    }
    return student


def save_state(value: tuple[dict[str, torch.Tensor], list[list[int]] | None], path: Path) -> None:
    write_atomic(path, lambda out: torch.save({"state": value[0], "groups": value[1]}, out))


def load_state(path: Path) -> tuple[dict[str, torch.Tensor], list[list[int]] | None]:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    return saved["state"], saved["groups"]
