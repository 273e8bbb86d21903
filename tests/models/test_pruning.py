"""Pruned students: importance from the teacher's activations, layers kept by block influence or angular distance,
Llama width pruning (MLP neurons, key/value groups, hidden channels) to ratios or a parameter target, and the
cache of both by content."""

import json
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from entrenar_bench.errors import ConfigError
from entrenar_bench.models.from_teacher import from_teacher
from entrenar_bench.models.pruning import importance as importance_module
from entrenar_bench.models.pruning.depth import ranked_layers
from entrenar_bench.models.pruning.importance import Importance, measure
from entrenar_bench.models.pruning.spec import PruneSpec, Shape
from entrenar_bench.models.pruning.sizes import Widths, param_count, target_widths

VOCAB = 40


def save_gqa_llama(directory: Path, layers: int = 6, tied: bool = True, seed: int = 0) -> LlamaForCausalLM:
    """A random tiny Llama with grouped-query attention: 6 query heads in 2 key/value groups of 3."""
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=36, intermediate_size=48, num_hidden_layers=layers,
                         num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=64,
                         tie_word_embeddings=tied, pad_token_id=None, bos_token_id=None, eos_token_id=None)
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(directory)
    return model


def blocks(n: int = 6, length: int = 12, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (n, length), generator=generator)
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[:, 0] = False
    return ids, mask


def calibration_of(ids, mask):
    return lambda n: (ids[:n], mask[:n])


def cosines(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a[mask], b[mask], dim=-1)


def test_importance_matches_the_hidden_states_it_is_defined_on(tmp_path):
    teacher = save_gqa_llama(tmp_path / "t")
    ids, mask = blocks()
    found = measure(teacher, teacher.model.layers, ids, mask, batch_size=4)
    with torch.no_grad():
        states = teacher(input_ids=ids, output_hidden_states=True).hidden_states
    for l in range(5):  # hidden_states[l], l < L: layer l's input (the last entry is after the final norm)
        cos = cosines(states[l], states[l + 1], mask)
        assert found.block_influence()[l] == pytest.approx(1 - cos.mean().item(), abs=1e-5)
        assert found.angular[l, l + 2] == pytest.approx(
            (torch.arccos(cosines(states[l], states[l + 2], mask).clamp(-1, 1)) / torch.pi).mean().item()
            if l + 2 < 6 else found.angular[l, l + 2].item(), abs=1e-4)
    assert torch.allclose(torch.diagonal(found.cosine), torch.ones(7), atol=1e-5)
    assert found.tokens == int(mask.sum())
    assert found.mlp.shape == (6, 48) and found.heads.shape == (6, 6) and found.hidden.shape == (36,)
    assert (found.mlp >= 0).all() and (found.heads >= 0).all()


def _importance(cos_next: list[float], angular: torch.Tensor | None = None) -> Importance:
    n = len(cos_next)
    cosine = torch.eye(n + 1)
    for l, c in enumerate(cos_next):
        cosine[l, l + 1] = c
    return Importance(cosine=cosine, angular=angular if angular is not None else torch.zeros(n + 1, n + 1),
                      mlp=None, heads=None, hidden=None, tokens=1)


def test_block_influence_drops_the_layers_that_change_their_input_least():
    importance = _importance([0.1, 0.8, 0.99, 0.97, 0.5, 0.2])  # BI = 0.9 0.2 0.01 0.03 0.5 0.8
    kept, scores = ranked_layers("block_influence", 4, importance)
    assert kept == [0, 1, 4, 5]
    assert scores == pytest.approx([0.9, 0.2, 0.01, 0.03, 0.5, 0.8])


def test_angular_drops_the_closest_contiguous_block_and_keeps_the_last_layer():
    angular = torch.full((7, 7), 0.5)
    angular[1, 3] = 0.1  # the block [1, 3) is the closest of length 2 ...
    angular[4, 6] = 0.01  # ... once [4, 6), which would drop the last layer, is ruled out
    kept, distances = ranked_layers("angular", 4, _importance([0.5] * 6, angular))
    assert kept == [0, 3, 4, 5]
    assert len(distances) == 4 and distances[1] == pytest.approx(0.1)  # starts 0..3: l + 2 <= 5
    assert ranked_layers("angular", 6, _importance([0.5] * 6, angular))[0] == list(range(6))


def test_a_dead_neuron_and_a_silent_key_value_group_go_first_and_change_nothing(tmp_path):
    """Neurons whose up projection is zero and a group whose values are zero contribute nothing: importance
    ranks them last, and the student without them computes what the teacher computes."""
    teacher = save_gqa_llama(tmp_path / "t", layers=3)
    state = teacher.state_dict()
    with torch.no_grad():
        for l in range(3):
            state[f"model.layers.{l}.mlp.up_proj.weight"][:24] = 0  # neurons 0..23 dead
            state[f"model.layers.{l}.self_attn.v_proj.weight"][6 * (l % 2):6 * (l % 2) + 6] = 0  # group l % 2 silent
    teacher.load_state_dict(state)
    teacher.save_pretrained(tmp_path / "t")
    ids, mask = blocks()
    student = from_teacher(str(tmp_path / "t"), method="first", keep=3, width={"mlp_ratio": 0.5, "heads": 3},
                           calibration=calibration_of(ids, mask), calibration_blocks=4)
    assert student.config.pruning["kept_groups"] == [[1], [0], [1]]
    assert student.config.intermediate_size == 24 and student.config.num_key_value_heads == 1
    with torch.no_grad():
        assert torch.allclose(student.eval()(input_ids=ids).logits, teacher(input_ids=ids).logits, atol=1e-5)


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("width", [{"mlp_ratio": 0.5}, {"heads": 3, "hidden_ratio": 0.5},
                                   {"mlp_ratio": 0.25, "heads": 3, "hidden_ratio": 0.34}])
def test_the_parameter_count_formula_is_the_built_students(tmp_path, tied, width):
    save_gqa_llama(tmp_path / "t", tied=tied)
    ids, mask = blocks()
    student = from_teacher(str(tmp_path / "t"), method="block_influence", keep=4, width=width,
                           calibration=calibration_of(ids, mask), calibration_blocks=4)
    actual = sum(p.numel() for p in student.parameters())
    shape = Shape.from_config(json.loads((tmp_path / "t" / "config.json").read_text()))
    assert (param_count(shape, 4, Widths(**student.config.pruning["widths"])) == actual
            == student.config.pruning["params"])
    assert student.config.hidden_size % student.config.num_attention_heads == 0
    assert student.eval()(input_ids=ids).logits.shape == (6, 12, VOCAB)


@pytest.mark.parametrize("target", [16_000, 25_000, 40_000])
def test_a_parameter_target_lands_within_five_percent(tmp_path, target):
    save_gqa_llama(tmp_path / "t")
    ids, mask = blocks()
    student = from_teacher(str(tmp_path / "t"), method="block_influence", keep=5, params=target,
                           calibration=calibration_of(ids, mask), calibration_blocks=4)
    actual = sum(p.numel() for p in student.parameters())
    assert abs(actual - target) <= 0.05 * target, (actual, target)


def test_an_unreachable_parameter_target_gives_the_range():
    shape = Shape.from_config({"model_type": "llama", "num_hidden_layers": 6, "hidden_size": 36,
                               "intermediate_size": 48,
                               "num_attention_heads": 6, "num_key_value_heads": 2, "vocab_size": VOCAB})
    with pytest.raises(ConfigError, match=r"^student.params=10 is out of reach with 6 layers and 6 heads: from \d+ "
                                          rf"to {param_count(shape, 6, target_widths(shape, PruneSpec(), 6))} "
                                          r"parameters$"):
        target_widths(shape, PruneSpec(params=10), 6)


def test_importance_and_pruned_weights_are_cached_by_content(tmp_path, monkeypatch):
    save_gqa_llama(tmp_path / "t")
    ids, mask = blocks()
    calls = []
    real = importance_module.measure

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("entrenar_bench.models.from_teacher.measure", counting)
    settings = dict(method="block_influence", keep=4, width={"mlp_ratio": 0.5}, calibration_blocks=4,
                    cache_dir=str(tmp_path / "cache"))
    first = from_teacher(str(tmp_path / "t"), calibration=calibration_of(ids, mask), **settings)
    again = from_teacher(str(tmp_path / "t"), calibration=calibration_of(ids, mask), **settings)
    assert len(calls) == 1
    for key, value in first.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    assert Path(first.config.pruning["cache"]).is_dir() and first.config.pruning["cache"].startswith(str(tmp_path))
    other = from_teacher(str(tmp_path / "t"), calibration=calibration_of(ids.flip(0), mask), **settings)  # other data
    assert len(calls) == 2 and other.config.pruning["cache"] != first.config.pruning["cache"]
    from_teacher(str(tmp_path / "t"), calibration=calibration_of(ids, mask), **{**settings, "keep": 3})
    assert len(calls) == 2  # another target, the same importance
    assert len(list((tmp_path / "cache" / "pruning").glob("*/importance.pt"))) == 2
    assert len(list((tmp_path / "cache" / "pruning").glob("*/student.pt"))) == 3


def test_depth_by_position_needs_no_calibration_and_records_what_it_kept(tmp_path):
    save_gqa_llama(tmp_path / "t")
    student = from_teacher(str(tmp_path / "t"), method="spread", keep=3)
    pruning = student.config.pruning
    assert pruning["layers"] == [0, 2, 5] and pruning["method"] == "spread" and pruning["scores"] is None
    assert pruning["calibration_blocks"] is None and pruning["params"] == sum(p.numel() for p in student.parameters())
    with pytest.raises(ConfigError, match="needs calibration blocks"):
        from_teacher(str(tmp_path / "t"), method="angular", keep=3)
