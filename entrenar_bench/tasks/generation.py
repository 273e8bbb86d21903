"""Continuations of real prefixes by a causal language model, laid out as training batches: the student's own
samples (on-policy batches, GKD; its sampled evaluation) and the teacher's decoded sequences (sequence-level KD,
Kim & Rush 2016).

**Prefix** of a packed row (:func:`prefix_lengths`): where the data holds prompt/response pairs, everything before
the row's first response — its first pair's prompt kept whole (BOS included) — so the model writes that
response, never a continuation of a fragment of the prompt; a pair is a target run after at least
``responses.MIN_PROMPT`` non-target tokens (``responses.py``). On plain text, and on rows without a pair, the
first ``prompt_tokens`` tokens (at most L − 1 of a row of L).

**Length**: row i is continued for at most ``budget_i = min(new_tokens, L − prefix_i)`` tokens (``new_tokens``
0: ``L − prefix_i``), so the result has the training rows' width L. Where the data has an end-of-sequence id
(a tokenizer's), a continuation ends at its first EOS, which is its last target (generation stops once every
row has one); without one (the embedded Markov task) exactly ``budget_i`` tokens are generated.

**Decoding** (``distill.settings.Decoding``): ``greedy``, ``beam`` (transformers' beam search, ``num_beams`` =
width) or ``sample`` (temperature, nucleus top-p, no top-k cut). Prefixes of different lengths are left-padded
for ``generate`` (its attention mask hides the padding and positions count from each row's first real token)
and the result is returned right-padded, as training rows are (a causal model's outputs at real positions
never see right padding).
"""

from __future__ import annotations

import torch
from torch import nn

from entrenar_bench.distill.settings import Decoding
from entrenar_bench.tasks.responses import pair_spans


def prefix_lengths(mask: torch.Tensor, prompt_tokens: int, pairs: bool) -> torch.Tensor:
    """(B,) prefix length of each row of the (B, L) target ``mask``: its first pair's prompt where ``pairs``
    (the data may hold prompt/response pairs) and the row has one, else ``prompt_tokens`` (at most L − 1)."""
    plain = min(prompt_tokens, mask.shape[1] - 1)
    if not pairs:
        return torch.full((mask.shape[0],), plain, dtype=torch.long)
    starts = [next((r0 for _, r0, _ in pair_spans(row)), plain) for row in mask.bool().tolist()]
    return torch.tensor(starts, dtype=torch.long)


def budgets(prefixes: torch.Tensor, width: int, new_tokens: int) -> torch.Tensor:
    """(B,) the most tokens each row is continued for: ``min(new_tokens, width − prefix)`` (0: ``width − prefix``)."""
    room = width - prefixes
    return room if not new_tokens else room.clamp(max=new_tokens)


def continuation_mask(sequences: torch.Tensor, prefixes: torch.Tensor, new_tokens: int,
                      eos: int | None) -> torch.Tensor:
    """(B, L) True at the generated tokens of right-padded ``sequences`` (targets in the data's layout): from
    each row's prefix for its budget, up to and including its first EOS where ``eos`` is given."""
    width = sequences.shape[1]
    positions = torch.arange(width, device=sequences.device)[None]
    start = prefixes.to(sequences.device)[:, None]
    mask = (positions >= start) & (positions < start
                                   + budgets(prefixes, width, new_tokens).to(sequences.device)[:, None])
    if eos is not None:
        ends = (sequences == eos) & mask
        mask &= (ends.cumsum(1) - ends.long()) == 0  # nothing after the first generated EOS
    return mask


def generate_kwargs(decoding: Decoding) -> dict:
    """``generate``'s arguments for ``decoding``."""
    if decoding.method == "sample":
        return {"do_sample": True, "temperature": decoding.temperature, "top_p": decoding.top_p, "top_k": 0,
                "num_beams": 1}
    return {"do_sample": False, "num_beams": decoding.beams if decoding.method == "beam" else 1}


def left_padded(input_ids: torch.Tensor, prefixes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's first ``prefixes[i]`` ids, right-aligned in a (B, max prefix) tensor, and its attention mask."""
    longest = int(prefixes.max())
    source = torch.arange(longest, device=input_ids.device)[None] - (longest - prefixes.to(input_ids.device))[:, None]
    real = source >= 0
    prompts = torch.where(real, input_ids.gather(1, source.clamp(min=0)), torch.zeros_like(source))
    return prompts, real.long()


@torch.no_grad()
def continue_prefixes(model: nn.Module, input_ids: torch.Tensor, prefixes: torch.Tensor, new_tokens: int,
                      decoding: Decoding, eos: int | None, suppress: list[int] | None = None) -> torch.Tensor:
    """(B, L) right-padded rows: each row's prefix of ``input_ids`` (B, L) and ``model``'s continuation of it
    (module docstring); positions past a continuation hold ``eos`` (or 0), which :func:`continuation_mask`
    leaves out; ``suppress``: ids never generated (a padded vocabulary's extra rows). Sampling draws from the global
    random generators."""
    width = input_ids.shape[1]
    room = budgets(prefixes, width, new_tokens).to(input_ids.device)
    new = int(room.max())
    prompts, attention = left_padded(input_ids, prefixes)
    fill = 0 if eos is None else eos
    stop = ({"eos_token_id": None, "min_new_tokens": new} if eos is None else {"eos_token_id": eos})
    was_training = model.training
    model.eval()
    try:
        out = model.generate(input_ids=prompts, attention_mask=attention, max_new_tokens=new, use_cache=True,
                             pad_token_id=fill, suppress_tokens=suppress, **stop, **generate_kwargs(decoding))
    finally:
        model.train(was_training)
    generated = out[:, prompts.shape[1]:]
    positions = torch.arange(width, device=input_ids.device)[None]
    start = prefixes.to(input_ids.device)[:, None]
    offset = positions - start  # index into the generated tokens
    written = (offset >= 0) & (offset < room[:, None].clamp(max=generated.shape[1]))
    continued = generated.gather(1, offset.clamp(0, generated.shape[1] - 1))
    return torch.where(positions < start, input_ids, torch.where(written, continued, torch.full_like(input_ids, fill)))
