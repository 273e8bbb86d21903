"""A user's corpus: plain text or JSON lines, a character or local Hugging Face tokenizer, blocks, padding and
prompt masking, fixed splits."""

import json

import pytest
import torch

from entrenar_bench.data.text import CorpusDataModule


def _module(path, **kwargs):
    dm = CorpusDataModule(str(path), **{"block_size": 8, "val_fraction": 0.25, "test_fraction": 0.25, "batch_size": 4,
                                        **kwargs})
    dm.setup()
    return dm


def _all(dm):
    return [torch.cat([dm.splits[s].tensors[i] for s in ("train", "val", "test")]) for i in (0, 1)]


def test_plain_text_in_blocks_with_a_character_tokenizer(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("abcabcab" * 4 + "abc")  # 35 characters: four full blocks and one of 3
    dm = _module(path)
    ids, mask = _all(dm)
    assert dm.vocab_size == 4 and ids.shape == (5, 8)          # a, b, c and the padding id 0
    assert not mask[:, 0].any()                                # nothing predicts a block's first token
    assert int(mask.sum()) == 4 * 7 + 2 and int((ids == 0).sum()) == 5  # the short block's padding is no target
    assert (ids[~mask & (ids == 0)] == 0).all()


def test_prompt_positions_are_not_targets(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": p, "response": r}) for p, r in
                              [("Q:ab", "xy"), ("Q:ba", "yx"), ("Q:aa", "xx"), ("Q:bb", "yy")]) + "\n")
    dm = _module(path)
    ids, mask = _all(dm)
    assert ids.shape == (4, 8)
    assert not mask[:, :4].any() and mask[:, 4:6].all() and not mask[:, 6:].any()  # only the response is learnt


def test_a_local_hugging_face_tokenizer(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "the", "cat", "sat", "on", "mat"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]").save_pretrained(tmp_path / "tok")
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"text": "the cat sat on the mat"}) for _ in range(4)))
    dm = _module(path, tokenizer=str(tmp_path / "tok"))
    ids, mask = _all(dm)
    assert dm.vocab_size == 7
    assert ids[0, :6].tolist() == [2, 3, 4, 5, 2, 6] and not mask[:, 6:].any()


def test_bad_input_is_one_clear_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"nope": 1}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: expected an object with 'text'"):
        _module(path)
    with pytest.raises(FileNotFoundError, match="not found"):
        _module(tmp_path / "absent.txt")
    with pytest.raises(ValueError, match="local tokenizer directory"):
        (tmp_path / "ok.txt").write_text("abc" * 10)
        _module(tmp_path / "ok.txt", tokenizer=str(tmp_path / "no-such-dir"))
