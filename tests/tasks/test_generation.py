"""Continuations of real prefixes (tasks/generation.py): a pair's prompt kept whole and the response generated, plain
text continued from its first prompt_tokens, EOS ends a continuation; greedy is the argmax continuation whatever
the other rows' prefix lengths (left padding), beam search of width 1 is greedy, wider beams find a continuation
at least as likely on this model; the stored sequences' key follows the decoding."""

import json

import pytest
import torch
from transformers import LlamaConfig

from entrenar_bench.data.text import CorpusDataModule
from entrenar_bench.distill.settings import Decoding, DistillSettings
from entrenar_bench.models.causal_lm import causal_lm
from entrenar_bench.tasks.causal_lm import CausalLMTask, source_mask
from entrenar_bench.tasks.generation import continuation_mask, continue_prefixes, prefix_lengths

GREEDY = Decoding("greedy")


def _model(vocab=11, seed=0):
    torch.manual_seed(seed)
    return causal_lm(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 num_key_value_heads=2), vocab_size=vocab).eval()


@torch.no_grad()
def _argmax_continuation(model, prefix: list[int], new: int) -> list[int]:
    """By hand: the most probable next token, appended, ``new`` times (no cache, no padding)."""
    ids = torch.tensor([prefix])
    for _ in range(new):
        ids = torch.cat([ids, model(input_ids=ids).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return ids[0, len(prefix):].tolist()


@torch.no_grad()
def _log_prob(model, row: list[int], start: int) -> float:
    logp = model(input_ids=torch.tensor([row])).logits.log_softmax(-1)[0]
    return float(sum(logp[t - 1, row[t]] for t in range(start, len(row))))


def test_prefixes_are_a_pairs_whole_prompt_or_the_first_prompt_tokens():
    mask = torch.tensor([[False, False, False, False, True, True, False, False],   # a pair: prompt of 4
                         [False, True, True, True, True, True, True, True],        # text: a lone first token
                         [False, False, False, True, True, False, False, True]])   # pair with a 3-token prompt
    assert prefix_lengths(mask, 2, pairs=True).tolist() == [4, 2, 3]
    assert prefix_lengths(mask, 2, pairs=False).tolist() == [2, 2, 2]              # generated data: no pairs
    assert prefix_lengths(mask, 99, pairs=False).tolist() == [7, 7, 7]             # at least one token to write


def test_the_mask_covers_the_budget_up_to_the_first_eos():
    rows = torch.tensor([[5, 5, 6, 0, 6, 0], [5, 6, 6, 6, 6, 6]])
    prefixes = torch.tensor([2, 1])
    assert continuation_mask(rows, prefixes, 0, eos=0).int().tolist() == [[0, 0, 1, 1, 0, 0], [0, 1, 1, 1, 1, 1]]
    assert continuation_mask(rows, prefixes, 2, eos=None).int().tolist() == [[0, 0, 1, 1, 0, 0], [0, 1, 1, 0, 0, 0]]


def test_greedy_is_the_argmax_continuation_of_each_rows_own_prefix():
    model = _model()
    ids = torch.randint(1, 11, (3, 9), generator=torch.Generator().manual_seed(1))
    prefixes = torch.tensor([3, 5, 2])                                   # left-padded together for generate
    out = continue_prefixes(model, ids, prefixes, 0, GREEDY, eos=None)
    again = continue_prefixes(model, ids, prefixes, 0, GREEDY, eos=None)
    assert torch.equal(out, again) and out.shape == ids.shape
    for row, p in zip(range(3), prefixes.tolist()):
        assert out[row, :p].tolist() == ids[row, :p].tolist()            # the prefix kept as it was
        assert out[row, p:].tolist() == _argmax_continuation(model, ids[row, :p].tolist(), 9 - p)


def test_beam_search_of_width_one_is_greedy_and_wider_beams_are_at_least_as_likely():
    model = _model(seed=3)
    ids = torch.randint(1, 11, (4, 8), generator=torch.Generator().manual_seed(2))
    prefixes = torch.full((4,), 3)
    greedy = continue_prefixes(model, ids, prefixes, 0, GREEDY, eos=None)
    assert torch.equal(continue_prefixes(model, ids, prefixes, 0, Decoding("beam", beams=1), eos=None), greedy)
    beam = continue_prefixes(model, ids, prefixes, 0, Decoding("beam", beams=4), eos=None)
    scores = [(_log_prob(model, b, 3), _log_prob(model, g, 3)) for b, g in zip(beam.tolist(), greedy.tolist())]
    assert all(b >= g - 1e-5 for b, g in scores) and any(b > g + 1e-5 for b, g in scores)


def test_sampling_draws_from_the_seeded_generator():
    model, ids, prefixes = _model(), torch.randint(1, 11, (2, 8)), torch.tensor([2, 4])
    sample = Decoding("sample", temperature=1.5)
    torch.manual_seed(7)
    first = continue_prefixes(model, ids, prefixes, 0, sample, eos=None)
    torch.manual_seed(7)
    assert torch.equal(first, continue_prefixes(model, ids, prefixes, 0, sample, eos=None))


def test_on_prompt_response_data_the_model_writes_the_response_to_the_whole_prompt(tmp_path):
    path = tmp_path / "pairs.jsonl"
    pairs = [("Q:ab", "xy"), ("Q:bab", "yx"), ("Q:a", "xxy"), ("Q:bb", "yy")] * 4
    path.write_text("\n".join(json.dumps({"prompt": p, "response": r}) for p, r in pairs) + "\n")
    dm = CorpusDataModule(str(path), block_size=12, val_fraction=0.25, test_fraction=0.25, batch_size=4)
    dm.setup()
    task, settings = CausalLMTask(dm), DistillSettings(prompt_tokens=2)
    batch = task.batch(next(iter(dm.train_dataloader())))
    data_mask = source_mask(batch.mask)
    model = _model(vocab=dm.vocab_size)
    out = task.own_samples(model, batch, settings)
    for row, generated in zip(range(len(batch.inputs)), source_mask(out.mask)):
        prompt_end = int(data_mask[row].int().argmax())                  # the first response token
        first = int(generated.int().argmax())
        assert first == prompt_end and out.inputs[row, :first].tolist() == batch.inputs[row, :first].tolist()
        assert dm.decode(out.inputs[row, :first].tolist()).startswith("Q:")
        written = out.inputs[row][generated].tolist()
        assert task.eos not in written[:-1]                              # a response ends at its first EOS
    test_ids, test_mask = dm.splits["test"].tensors
    for sample, row, mask in zip(task.generations(model, prompt_tokens=2, count=3, new_tokens=3), test_ids, test_mask):
        assert sample["prompt_ids"] == row[:int(mask.int().argmax())].tolist()  # generations.json: the whole prompt


@pytest.mark.parametrize("changed, same", [
    (dict(seq_kd_decoding="beam"), False),
    (dict(seq_kd_decoding="beam", seq_kd_beams=2), False),
    (dict(seq_kd_decoding="sample"), False),
    (dict(prompt_tokens=4), False),
    (dict(sample_temperature=0.5), True),   # greedy reads no sampling setting
    (dict(seq_kd_beams=2), True),           # nor a beam width
])
def test_the_stored_sequences_key_follows_the_decoding(changed, same):
    assert (DistillSettings(**changed).seq_kd_key == DistillSettings().seq_kd_key) is same
    assert DistillSettings(seq_kd_decoding="sample", sample_temperature=0.5).seq_kd_key != \
        DistillSettings(seq_kd_decoding="sample").seq_kd_key
