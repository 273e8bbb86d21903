"""Text as the model sees it: a packed block decodes to the source text, with the tokenizer's own BOS and EOS
(or its end-of-text token where the EOS ends a chat turn) and never a chat template's turn marker; a
prompt/response pair is one text, so its targets are the tokens the model would produce after the prompt."""

import json

import pytest
from transformers import AutoTokenizer

from entrenar_bench.data.encoding import document_specials, turn_markers
from entrenar_bench.data.text import CorpusDataModule
from hf_tokenizers import save_tokenizer

DOCUMENTS = ["The cat sat on the mat.", "A dog ran in the park,\nfar away."]
PAIRS = [("He was David,", "king of Israel."), ("Where did the dog run?\n", "In the park.")]


@pytest.fixture(scope="module")
def smollm2_like(tmp_path_factory):
    """As SmolLM2-Instruct: BOS <|im_start|> and EOS <|im_end|>, both ChatML turn markers; <|endoftext|> too."""
    return AutoTokenizer.from_pretrained(save_tokenizer(
        tmp_path_factory.mktemp("tok") / "chatml", bos="<|im_start|>", pad=None, extra_specials=("<|endoftext|>",)))


@pytest.fixture(scope="module")
def llama_like(tmp_path_factory):
    """BOS <s>, EOS </s>, and a chat template whose turn marker <|im_start|> is neither."""
    template = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}</s>{% endfor %}"
    return AutoTokenizer.from_pretrained(save_tokenizer(
        tmp_path_factory.mktemp("tok") / "llama", eos="</s>", extra_specials=("</s>",), chat_template=template))


def _blocks(tmp_path, tok, name, lines, **kwargs):
    path = tmp_path / name
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    dm = CorpusDataModule(str(path), tok.name_or_path, block_size=256, val_fraction=0.25, test_fraction=0.25,
                          **kwargs)
    ids, mask = dm.load_tokens()
    return ids, mask


def _decode(tok, ids, mask=None):
    return tok.decode([i for n, i in enumerate(ids.tolist()) if mask is None or mask[n]], skip_special_tokens=False)


def test_turn_markers_are_never_bos_and_a_turn_ending_eos_gives_way_to_end_of_text(smollm2_like, llama_like):
    ids = smollm2_like.convert_tokens_to_ids
    assert turn_markers(smollm2_like) == {ids("<|im_start|>"), ids("<|im_end|>")}
    assert document_specials(smollm2_like).bos is None and document_specials(smollm2_like).end == ids("<|endoftext|>")
    assert document_specials(llama_like).bos == llama_like.bos_token_id
    assert document_specials(llama_like).end == llama_like.eos_token_id


def test_a_plain_text_block_decodes_to_the_source_without_chat_markers(tmp_path, smollm2_like, llama_like):
    records = [{"text": t} for t in DOCUMENTS * 4]
    ids, mask = _blocks(tmp_path, smollm2_like, "docs.jsonl", records)
    text = "".join(f"{t}<|endoftext|>" for t in DOCUMENTS * 4)
    assert _decode(smollm2_like, ids[0]) == text + "<|im_end|>" * (256 - len(smollm2_like.encode(text)))  # padding
    ids, mask = _blocks(tmp_path, llama_like, "docs.jsonl", records)
    assert _decode(llama_like, ids[0]).startswith("".join(f"<s>{t}</s>" for t in DOCUMENTS * 4))
    assert "<|im_start|>" not in _decode(llama_like, ids[0])


def test_a_plain_text_file_decodes_to_its_documents(tmp_path, llama_like):
    path = tmp_path / "prose.txt"
    path.write_text("\n\n".join(DOCUMENTS * 4) + "\n")
    dm = CorpusDataModule(str(path), llama_like.name_or_path, block_size=256, val_fraction=0.25, test_fraction=0.25)
    ids, _ = dm.load_tokens()
    assert _decode(llama_like, ids[0]).startswith("".join(f"<s>{t}</s>" for t in DOCUMENTS * 4))


@pytest.mark.parametrize("tokenizer", ["smollm2_like", "llama_like"])
def test_a_pair_is_one_text_and_only_its_response_is_learnt(tmp_path, tokenizer, request):
    tok = request.getfixturevalue(tokenizer)
    specials = document_specials(tok)
    bos, end = ("" if specials.bos is None else tok.bos_token), tok.convert_ids_to_tokens(specials.end)
    ids, mask = _blocks(tmp_path, tok, "pairs.jsonl", [{"prompt": p, "response": r} for p, r in PAIRS * 4])
    joined = ["He was David, king of Israel.", "Where did the dog run?\nIn the park."]
    assert _decode(tok, ids[0]).startswith("".join(f"{bos}{t}{end}" for t in joined * 4))
    whole = tok.encode(joined[0], add_special_tokens=False)
    start = len(bos and [bos])
    assert ids[0, start:start + len(whole)].tolist() == whole                # the tokens of the text as one
    first = int(mask[0].argmax())                                   # the response's first token
    assert len(tok.encode("He was David,", add_special_tokens=False)) <= first - start < len(whole)
    assert not mask[0, :first].any() and mask[0, first:start + len(whole) + 1].all()   # through its end
    assert _decode(tok, ids[0, first:start + len(whole)]).strip() == "king of Israel."
    assert _decode(tok, ids[0], mask[0]).replace(" ", "").startswith(f"kingofIsrael.{end}Inthepark.{end}")


def test_a_chat_template_keeps_its_markers_inside_the_conversation(tmp_path, smollm2_like):
    ids, mask = _blocks(tmp_path, smollm2_like, "chat.jsonl", [{"prompt": p, "response": r} for p, r in PAIRS * 4],
                        chat_template=True)
    assert _decode(smollm2_like, ids[0]).startswith(
        "<|im_start|>user\nHe was David,<|im_end|>\n<|im_start|>assistant\nking of Israel.<|im_end|><|im_start|>user")
    assert _decode(smollm2_like, ids[0], mask[0]).startswith("king of Israel.<|im_end|>In the park.<|im_end|>")
