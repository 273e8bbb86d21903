"""ROUGE-L of greedy responses (tasks/responses.py): pairs found in packed blocks, a perfect responder scores 1,
a wrong one less, text documents are no pairs, and a run on prompt/response data records it."""

import json

import pytest
import torch
from torch import nn

from entrenar_bench.data.text import CorpusDataModule
from entrenar_bench.run.app import run
from entrenar_bench.tasks.responses import response_pairs, rouge_l

PAIRS = [("what did the cat do", "it sat on the mat"), ("where is the dog", "the dog is in the garden"),
         ("who ate the cake", "nobody ate it")] * 8


def test_pairs_are_the_target_runs_after_a_prompt_and_text_documents_are_not():
    ids = torch.arange(12)[None]
    mask = torch.tensor([[0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 1, 0]], dtype=torch.bool)  # BOS+text, prompt+response
    assert response_pairs(ids, mask, limit=10) == [([3, 4, 5], [6, 7]), ([8, 9], [10])]
    assert response_pairs(ids, mask, limit=1) == [([3, 4, 5], [6, 7])]
    assert response_pairs(ids, torch.ones_like(mask), limit=10) == []


class Responder(nn.Module):
    """Answers a prompt with a fixed function of its text (a stand-in whose answers are known)."""

    def __init__(self, tok, answer):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.tok, self.answer = tok, answer

    def generate(self, input_ids, max_new_tokens, **_):
        prompt = self.tok.decode(input_ids[0].tolist(), skip_special_tokens=True)
        reply = self.tok.encode(self.answer(prompt), add_special_tokens=False)[:max_new_tokens]
        return torch.cat([input_ids, torch.tensor([reply])], dim=1)


@pytest.fixture
def pair_data(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": p, "response": r}) for p, r in PAIRS))
    data = CorpusDataModule(str(path), block_size=48, batch_size=4)
    data.setup("fit")
    return data


def test_a_perfect_responder_scores_one_and_a_wrong_one_less(pair_data):
    truth = dict(PAIRS)
    right = Responder(pair_data.loaded_tokenizer, lambda prompt: truth[next(p for p in truth if p in prompt)])
    wrong = Responder(pair_data.loaded_tokenizer, lambda prompt: "the cat")
    assert rouge_l(right, pair_data, "test", limit=16) == pytest.approx(1.0)
    assert 0 < rouge_l(wrong, pair_data, "test", limit=16) < 0.5


def test_a_run_on_prompt_response_data_records_rouge_l(compose_cfg, pair_data, tmp_path):
    overrides = ["+experiment=lm", "data=corpus", f"data.path={pair_data.path}", "data.block_size=48",
                 "teacher.train.epochs=1", "train.epochs=1", "data.batch_size=4"]
    record = run(compose_cfg(*overrides), tmp_path / "run")
    for name in ("rouge_l", "val_rouge_l"):
        assert 0 <= record["metrics"][name] <= 1
    assert 0 <= record["teacher"]["sample_metrics"]["rouge_l"] <= 1
