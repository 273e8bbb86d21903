"""ROUGE-L of a model's greedy responses against the reference responses of prompt/response data.

In a packed block (``data/packing.py``) a pair is a run of non-target positions (its prompt, with BOS) followed
by a run of target positions (its response and EOS); a text document is a lone BOS before its targets, so a
target run after fewer than two non-target tokens is not a pair. Score: rouge-score's ``rougeL`` F-measure
(longest common subsequence over its word tokens, stemmed) between the decoded greedy response (as many new
tokens as the reference has, stopped at EOS) and the reference, averaged over the first ``limit`` pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from typing import Any

import torch
from torch import nn

MIN_PROMPT = 2  # non-target tokens before a response: a text document has only its BOS


def runs(mask: list[bool]) -> list[tuple[bool, int, int]]:
    """``(value, start, end)`` of each maximal run of equal values."""
    out, start = [], 0
    for value, group in groupby(mask):
        end = start + sum(1 for _ in group)
        out.append((value, start, end))
        start = end
    return out


def pair_spans(row_mask: list[bool]) -> Iterator[tuple[int, int, int]]:
    """``(prompt start, response start, response end)`` of each pair in one packed row's target mask."""
    spans = runs(row_mask)
    for (before, p0, p1), (target, r0, r1) in zip(spans, spans[1:]):
        if not before and target and p1 - p0 >= MIN_PROMPT:
            yield p0, r0, r1


def response_pairs(ids: torch.Tensor, mask: torch.Tensor, limit: int) -> list[tuple[list[int], list[int]]]:
    """The first ``limit`` (prompt ids, reference response ids) of packed rows ``ids`` / ``mask`` (B, L)."""
    pairs = []
    for row, row_mask in zip(ids.tolist(), mask.bool().tolist()):
        for p0, r0, r1 in pair_spans(row_mask):
            pairs.append((row[p0:r0], row[r0:r1]))
            if len(pairs) == limit:
                return pairs
    return pairs


@torch.no_grad()
def rouge_l(model: nn.Module, datamodule: Any, split: str, limit: int) -> float | None:
    """Mean ROUGE-L F-measure of ``model``'s greedy responses on ``split``'s first ``limit`` pairs (None: none)."""
    ids, mask = datamodule.splits[split].tensors
    pairs = response_pairs(ids, mask, limit)
    if not pairs:
        return None
    from rouge_score.rouge_scorer import RougeScorer  # loaded only for prompt/response data

    scorer, device = RougeScorer(["rougeL"], use_stemmer=True), next(model.parameters()).device
    eos = datamodule.loaded_tokenizer.eos_token_id
    stops = sorted({eos, datamodule.specials.end})  # a plain pair ends with the document end, a chat one with EOS
    was_training, scores = model.training, []
    model.eval()
    for prompt, reference in pairs:
        prompt_ids = torch.tensor([prompt], device=device)
        out = model.generate(input_ids=prompt_ids, attention_mask=torch.ones_like(prompt_ids), do_sample=False,
                             max_new_tokens=len(reference), eos_token_id=stops, pad_token_id=eos, use_cache=True)
        response = datamodule.loaded_tokenizer.decode(out[0, len(prompt):].tolist(), skip_special_tokens=True)
        truth = datamodule.loaded_tokenizer.decode(reference, skip_special_tokens=True)
        scores.append(scorer.score(truth, response)["rougeL"].fmeasure)
    model.train(was_training)
    return sum(scores) / len(scores)
