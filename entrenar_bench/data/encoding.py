"""Documents to token units (``packing.Unit``), as the model saw text in training.

A text document is ``[BOS] text END``, every id a target but the BOS. A prompt/response pair is one text,
``[BOS] prompt separator response END``, tokenised whole (so the response's first token is the one the model
would produce after the prompt, a leading space and all), with only the response and END as targets: the
prompt's tokens are the longest run of the whole text's ids that tokenising the prompt (and separator) alone
also gives. The separator (``pair_separator``, a space by default) goes in only where neither side has
whitespace at the join. With ``chat_template`` the pair is rendered as a user turn and an assistant turn by
the tokenizer's chat template instead (the generation prompt ends the prompt part, so the assistant header is
context too; the template's own end-of-turn token ends the response when it is the EOS, and an EOS is added
otherwise).

Special tokens (:func:`document_specials`): a chat template's turn markers (special tokens it writes at every
turn, such as ChatML's ``<|im_start|>`` and ``<|im_end|>``) never appear outside a rendered conversation. BOS
is the tokenizer's BOS where it has one that is neither its EOS (GPT-2's ``<|endoftext|>`` is both: END alone
separates documents) nor a turn marker (SmolLM2-Instruct's BOS is ``<|im_start|>``: its documents start with
nothing, as in its pre-training); the ids do not get a second one. END is the EOS, or, where the EOS is a turn
marker, the tokenizer's own end-of-text special token (``<|endoftext|>``, ``<|end_of_text|>``, ``</s>``) where
it has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from entrenar_bench.data.corpus import PAIR_SEPARATOR, Document, PromptResponse, TextDocument, first_line, join_pair
from entrenar_bench.data.packing import Unit, fit_pair

END_OF_TEXT = ("<|endoftext|>", "<|end_of_text|>", "</s>")  # pre-training's document end, by its usual names
_TURNS = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]


@dataclass(frozen=True)
class Specials:
    """The ids that start (``bos``, None: nothing) and end (``end``) a document or a plain pair."""

    bos: int | None
    end: int


def _special_tokens(tok) -> dict[str, int]:
    decoder = getattr(tok, "added_tokens_decoder", None) or {}
    return {token.content: i for i, token in decoder.items() if getattr(token, "special", False)}


def turn_markers(tok) -> set[int]:
    """Ids of the special tokens the chat template writes at every turn (twice in a two-turn conversation; a
    template that cannot render one: every special token its source names)."""
    template = getattr(tok, "chat_template", None)
    if not template:
        return set()
    specials = _special_tokens(tok)
    try:
        text = tok.apply_chat_template(_TURNS, tokenize=False)
        return {i for token, i in specials.items() if text.count(token) >= 2}
    except Exception:  # noqa: BLE001 (a template that refuses these roles): read its source instead
        return {i for token, i in specials.items() if token in str(template)}


def document_specials(tok) -> Specials:
    """BOS and END of documents and plain pairs for ``tok`` (see the module's docstring)."""
    markers, eos = turn_markers(tok), tok.eos_token_id
    bos = getattr(tok, "bos_token_id", None)
    if bos == eos or bos in markers:
        bos = None
    if eos in markers:
        specials = _special_tokens(tok)
        eos = next((specials[t] for t in END_OF_TEXT if t in specials and specials[t] not in markers), eos)
    return Specials(bos, eos)


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


def split_pair(context: list[int], whole: list[int]) -> tuple[list[int], list[int]]:
    """``whole`` (the pair's text's ids) cut after the ids it shares with ``context`` (the prompt's alone)."""
    shared = next((n for n, (a, b) in enumerate(zip(context, whole)) if a != b), min(len(context), len(whole)))
    shared = min(shared, len(whole) - 1)  # a response has at least one id
    return whole[:shared], whole[shared:]


@dataclass(frozen=True)
class EncodedCorpus:
    """The units in document order, and how many pairs :func:`fit_pair` cut."""

    units: list[Unit]
    prompts_cut: int
    responses_cut: int


def encode_documents(tok, documents: Sequence[Document], block_size: int, chat_template: bool = False,
                     source: str = "corpus", pair_separator: str = PAIR_SEPARATOR) -> EncodedCorpus:
    """Every document as a unit; ``source`` names the corpus in errors."""
    specials = document_specials(tok)
    head = [] if specials.bos is None else [specials.bos]
    texts = [d.text for d in documents if isinstance(d, TextDocument)]
    pairs = [d for d in documents if isinstance(d, PromptResponse)]
    if chat_template:
        rendered = [render_chat(tok, p, f"{source}:{p.line}") for p in pairs]
        contexts, wholes = [h for h, _ in rendered], [h + r for h, r in rendered]
        end = tok.eos_token_id  # the template's end of turn
    else:
        contexts = [join_pair(p.prompt, p.response, pair_separator) for p in pairs]
        wholes = [c + p.response for c, p in zip(contexts, pairs)]
        end = specials.end
    text_ids = iter(_encode(tok, texts))
    pair_ids = iter(zip(_encode(tok, contexts), _encode(tok, wholes)))
    units, fitted = [], []
    for document in documents:
        if isinstance(document, TextDocument):
            ids = next(text_ids)
            units.append(Unit(head + ids + [specials.end], [False] * len(head) + [True] * (len(ids) + 1)))
            continue
        prompt, response = split_pair(*next(pair_ids))
        if head and prompt[:1] != head:
            prompt = head + prompt
        if response[-1:] != [end]:
            response = response + [end]
        fitted.append(fit_pair(prompt, response, block_size))
        units.append(fitted[-1].unit)
    return EncodedCorpus(units, sum(f.prompt_cut for f in fitted), sum(f.response_cut for f in fitted))
