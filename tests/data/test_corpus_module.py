"""The corpus data module end to end, with the character tokenizer and with real Hugging Face tokenizers
built here: documents packed with EOS (and BOS), prompt tokens never targets, chat templates, padding never
a target even where its id is the EOS id, fixed splits, batches of (ids, mask, index)."""

import json

import pytest
import torch
from transformers import AutoTokenizer

from entrenar_bench.data.text import CorpusDataModule
from hf_tokenizers import eos_padded_tokenizer, hf_tokenizer, save_tokenizer  # noqa: F401  (fixtures)


def _module(path, **kwargs):
    dm = CorpusDataModule(str(path), **{"block_size": 8, "val_fraction": 0.25, "test_fraction": 0.25, "batch_size": 4,
                                        **kwargs})
    dm.setup()
    return dm


def _all(dm):
    """Every block, in the corpus's order (the splits undone)."""
    ids, mask = (torch.cat([dm.splits[s].tensors[i] for s in ("train", "val", "test")]) for i in (0, 1))
    order = torch.as_tensor(__import__("numpy").random.default_rng(dm.split_seed).permutation(len(ids)))
    return ids[order.argsort()], mask[order.argsort()]


def _pairs(path, pairs):
    path.write_text("\n".join(json.dumps({"prompt": p, "response": r}) for p, r in pairs) + "\n")
    return path


def test_plain_text_documents_are_packed_with_eos_between_them(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("abc\n\nba\n\ncab\n\n" * 3)                               # 9 documents of 3, 2 and 3 characters
    dm = _module(path)
    ids, mask = _all(dm)
    assert dm.vocab_size == 4                                                # a, b, c and id 0: padding and EOS
    stream = "".join(".abc"[i] for i in ids.flatten().tolist())
    assert stream == "abc.ba.cab." * 3 + "." * 7                             # 33 tokens in 5 blocks of 8
    assert ids.shape == (5, 8) and not mask[:, 0].any()
    assert mask[-2].tolist() == [False] + [True] * 7 and not mask[-1].any()  # the last EOS starts block 5
    assert mask.sum() == 33 - 5                                              # every token but the 5 block starts


def test_pairs_are_packed_whole_with_only_responses_learnt_and_little_padding(tmp_path):
    pairs = [("Q:ab", "xy"), ("Q:ba", "yx"), ("Q:aa", "xx"), ("Q:bb", "yy")] * 3
    dm = _module(_pairs(tmp_path / "pairs.jsonl", pairs), block_size=16, pair_separator="")  # "Q:abxy"
    ids, mask = _all(dm)
    assert ids.shape == (6, 16)                                              # two 7-token pairs a block, not one
    for row, (_prompt_targets, _response_targets) in zip(mask, [(slice(0, 4), slice(4, 7))] * 6):
        assert not row[:4].any() and row[4:7].all() and not row[7:11].any() and row[11:14].all()
        assert not row[14:].any()                                            # the padding
    assert (ids == 0).sum() == 6 * (2 + 2)                                   # each pair's EOS and the padding


def test_a_pair_longer_than_a_block_keeps_its_prompt(tmp_path, caplog):
    pairs = [("Q:abc", "xyzxyzxyz"), ("Q:abcabcabcab", "xy"), ("Q:a", "x"), ("Q:b", "y"), ("Q:c", "z")]
    dm = _module(_pairs(tmp_path / "long.jsonl", pairs), block_size=8, pair_separator="")
    ids, mask = _all(dm)
    chars = "\0" + "".join(sorted(set("Q:abcxyz")))
    text = ["".join(chars[i] for i in row.tolist()) for row in ids]
    assert text[0] == "Q:abcxyz" and mask[0].tolist() == [False] * 5 + [True] * 3   # the response truncated
    assert text[1] == "bcabcabx" and mask[1].tolist() == [False] * 7 + [True]    # the prompt lost its start
    assert "1 prompt(s)" in caplog.text and "lost their start" in caplog.text


def test_a_hugging_face_tokenizer_adds_bos_and_eos(tmp_path, hf_tokenizer):
    tok = AutoTokenizer.from_pretrained(hf_tokenizer)
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"text": t}) for t in ["the cat sat on the mat", "a dog ran"] * 24))
    dm = _module(path, tokenizer=str(hf_tokenizer), block_size=32)
    ids, mask = _all(dm)
    first, second = (tok.encode(t, add_special_tokens=False) for t in ["the cat sat on the mat", "a dog ran"])
    expected = [tok.bos_token_id, *first, tok.eos_token_id, tok.bos_token_id, *second, tok.eos_token_id]
    assert dm.vocab_size == len(tok) and ids[0, :len(expected)].tolist() == expected
    targets = [False] + [True] * (len(first) + 1) + [False] + [True] * (len(second) + 1)
    assert mask[0, :len(expected)].tolist() == [False] + targets[1:]      # BOS is never a target
    pad = ids == tok.pad_token_id
    assert pad.any() and not mask[pad].any()


def test_padding_with_the_eos_id_is_never_a_target(tmp_path, eos_padded_tokenizer):
    tok = AutoTokenizer.from_pretrained(eos_padded_tokenizer)
    assert tok.pad_token_id == tok.eos_token_id and tok.bos_token_id is None
    path = tmp_path / "docs.txt"
    path.write_text("the cat sat\n\nit ran in the park\n\n" * 12)
    dm = _module(path, tokenizer=str(eos_padded_tokenizer), block_size=16)
    ids, mask = _all(dm)
    eos = ids == tok.eos_token_id
    used = torch.arange(16) < (ids != tok.eos_token_id).cumsum(1).argmax(1, keepdim=True) + 2  # through last EOS
    assert mask[eos & used & (torch.arange(16) > 0)].all()                 # a real EOS is learnt ...
    assert not mask[eos & ~used].any() and (eos & ~used).any()             # ... the padding, same id, is not


def test_a_chat_template_renders_pairs_and_only_the_answer_is_learnt(tmp_path, hf_tokenizer):
    tok = AutoTokenizer.from_pretrained(hf_tokenizer)
    pairs = [("what did the cat do", "it sat on the mat"), ("where did the dog run", "it ran in the park")] * 6
    dm = _module(_pairs(tmp_path / "chat.jsonl", pairs), tokenizer=str(hf_tokenizer), block_size=64,
                 chat_template=True)
    ids, mask = _all(dm)
    row, targets = ids[0].tolist(), mask[0]
    assert row[0] == tok.bos_token_id
    rendered = tok.decode(row, skip_special_tokens=False)
    assert rendered.startswith("<s><|im_start|>user\nwhat did the cat do<|im_end|>\n<|im_start|>assistant\n"
                               "it sat on the mat<|im_end|><s><|im_start|>user\nwhere did the dog run")
    learnt = tok.decode([i for i, t in zip(row, targets) if t], skip_special_tokens=False)
    assert learnt.startswith("it sat on the mat<|im_end|>it ran in the park<|im_end|>")
    plain = _module(_pairs(tmp_path / "plain.jsonl", pairs), tokenizer=str(hf_tokenizer), block_size=64)
    assert tok.decode(_all(plain)[0][0].tolist()).startswith("<s>what did the cat do it sat on the mat<|im_end|>")


def test_a_chat_template_the_tokenizer_lacks_is_refused(tmp_path, eos_padded_tokenizer):
    path = _pairs(tmp_path / "chat.jsonl", [("Q", "A")] * 8)
    with pytest.raises(ValueError, match="data.chat_template=true but tokenizer .* has no chat template"):
        _module(path, tokenizer=str(eos_padded_tokenizer), chat_template=True)
    with pytest.raises(ValueError, match="tokenizer char has no chat template"):
        _module(path, chat_template=True)


def test_batches_carry_ids_mask_and_index_and_the_mask_counts_target_tokens(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("the quick brown fox\n\njumps over\n\nthe lazy dog\n\n" * 10)
    dm = _module(path, train_subset=4)
    input_ids, mask, index = next(iter(dm.train_dataloader()))
    assert input_ids.shape == mask.shape == (4, 8) and mask.dtype == torch.bool
    assert torch.equal(dm.train_inputs()[index], input_ids)
    assert sum(int(m.sum()) for _, m, _ in dm.train_dataloader()) == int(dm.splits["train"].tensors[1][:4].sum())
    assert not hasattr(dm, "indexed_train_dataloader")


def test_a_corpus_too_short_for_the_splits(tmp_path):
    (tmp_path / "short.txt").write_text("abc")
    with pytest.raises(ValueError, match="1 sequences are too few"):
        _module(tmp_path / "short.txt")


def test_a_chat_template_that_fails_or_does_not_start_with_the_prompt(tmp_path):
    path = _pairs(tmp_path / "chat.jsonl", [("what did the cat do", "it sat")] * 8)
    raising = save_tokenizer(tmp_path / "raising", chat_template="{{ raise_exception('no user turns here') }}")
    with pytest.raises(ValueError, match=r"chat.jsonl:1: the chat template of .* fails \(no user turns here\)"):
        _module(path, tokenizer=str(raising), chat_template=True)
    reordered = save_tokenizer(tmp_path / "reordered", chat_template="{{ messages | length }}{{ messages[0].content }}")
    with pytest.raises(ValueError, match="does not render the prompt as the start of the conversation"):
        _module(path, tokenizer=str(reordered), chat_template=True)
