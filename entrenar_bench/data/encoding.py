"""Documents to token units (``packing.Unit``), with the tokenizer's special tokens and chat template.

A text document is ``[BOS] text EOS``, every id a target but the BOS. A prompt/response pair is
``[BOS] prompt response EOS`` with only the response and its EOS as targets; with ``chat_template``
the pair is first rendered as a user turn and an assistant turn by the tokenizer's chat template
(the generation prompt ends the prompt part, so the assistant header is context too; the template's
own end-of-turn token ends the response when it is the EOS, and an EOS is added otherwise). BOS is
added where the tokenizer has one that differs from its EOS (GPT-2's ``<|endoftext|>`` is both: EOS
alone separates documents) and the ids do not already start with it. Prompt and response are
tokenized apart, so the target mask falls exactly at their boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from entrenar_bench.data.corpus import Document, PromptResponse, TextDocument, first_line
from entrenar_bench.data.packing import Unit, fit_pair


def _bos(tok) -> int | None:
    bos = getattr(tok, "bos_token_id", None)
    return None if bos is None or bos == tok.eos_token_id else bos


def _encode(tok, texts: list[str]) -> list[list[int]]:
    return tok(texts, add_special_tokens=False, verbose=False)["input_ids"] if texts else []


def render_chat(tok, pair: PromptResponse, where: str) -> tuple[str, str]:
    """The pair as the chat template renders it, cut where the assistant's answer begins."""
    user = [{"role": "user", "content": pair.prompt}]
    try:
        head = tok.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        whole = tok.apply_chat_template(user + [{"role": "assistant", "content": pair.response}], tokenize=False)
    except Exception as e:  # a template's own raise_exception(), a Jinja syntax or undefined-name error
        raise ValueError(f"{where}: the chat template of {tok.name_or_path} fails ({first_line(e)})") from None
    if not whole.startswith(head):
        raise ValueError(f"{where}: the chat template of {tok.name_or_path} does not render the prompt as the "
                         "start of the conversation; set data.chat_template=false")
    return head, whole[len(head):].rstrip()  # what follows the end-of-turn token is not the answer


@dataclass(frozen=True)
class EncodedCorpus:
    """The units in document order, and how many pairs :func:`fit_pair` cut."""

    units: list[Unit]
    prompts_cut: int
    responses_cut: int


def encode_documents(tok, documents: Sequence[Document], block_size: int, chat_template: bool = False,
                     source: str = "corpus") -> EncodedCorpus:
    """Every document as a unit; ``source`` names the corpus in errors."""
    bos, eos = _bos(tok), tok.eos_token_id
    texts = [d.text for d in documents if isinstance(d, TextDocument)]
    pairs = [d for d in documents if isinstance(d, PromptResponse)]
    if chat_template:
        rendered = [render_chat(tok, p, f"{source}:{p.line}") for p in pairs]
        prompts, responses = [h for h, _ in rendered], [r for _, r in rendered]
    else:
        prompts, responses = [p.prompt for p in pairs], [p.response for p in pairs]
    text_ids = iter(_encode(tok, texts))
    pair_ids = iter(zip(_encode(tok, prompts), _encode(tok, responses)))
    units, fitted = [], []
    for document in documents:
        if isinstance(document, TextDocument):
            ids = next(text_ids)
            head = [] if bos is None else [bos]
            units.append(Unit(head + ids + [eos], [False] * len(head) + [True] * (len(ids) + 1)))
            continue
        prompt, response = next(pair_ids)
        if bos is not None and prompt[:1] != [bos]:
            prompt = [bos] + prompt
        if response[-1:] != [eos]:
            response = response + [eos]
        fitted.append(fit_pair(prompt, response, block_size))
        units.append(fitted[-1].unit)
    return EncodedCorpus(units, sum(f.prompt_cut for f in fitted), sum(f.response_cut for f in fitted))
