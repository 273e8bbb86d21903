"""The teacher-signal store's two forms, and its chunked computation (the same as reducing the outputs whole)."""

import torch
from transformers import LlamaConfig

from entrenar_bench.distill import token_losses
from entrenar_bench.models.causal_lm import causal_lm
from entrenar_bench.tasks.teacher_store import TeacherTargets, compute_targets

CHUNK = 256


def test_chunked_outputs_equal_the_whole():
    torch.manual_seed(0)
    teacher = causal_lm(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                    num_key_value_heads=2), vocab_size=9).eval()
    ids = torch.randint(0, 9, (CHUNK + 7, 5))  # two chunks
    with torch.no_grad():
        whole = torch.cat([teacher(input_ids=part).logits for part in ids.split(CHUNK)])
    cpu = torch.device("cpu")
    logits_of = lambda rows: teacher(input_ids=rows).logits  # noqa: E731
    exact = compute_targets(logits_of, ids, 0, cpu, "32-true", CHUNK)
    assert exact.is_exact and torch.equal(exact.state["logits"], whole)
    top = compute_targets(logits_of, ids, 3, cpu, "32-true", CHUNK)
    reference = TeacherTargets.top_k(whole, 3)
    assert top.state["vocab_size"] == 9 and all(torch.equal(top.state[k], reference.state[k])
                                                for k in ("top_log_probs", "top_ids"))


def test_stored_teacher_outputs_exact_and_top_k():
    logits = torch.randn(5, 4, 10)
    index = torch.tensor([3, 0])
    assert torch.equal(TeacherTargets.exact(logits).logits(index), logits[index])
    p = torch.softmax(logits[index], dim=-1)
    every = torch.softmax(TeacherTargets.top_k(logits, 10).logits(index), dim=-1)
    assert torch.allclose(every, p, atol=1e-6)                         # k = V: the same distribution
    approx = torch.softmax(TeacherTargets.top_k(logits, 3).logits(index), dim=-1)
    top = p.topk(3, dim=-1)
    assert torch.allclose(approx.gather(-1, top.indices), top.values, atol=1e-6)  # the kept ones exact
    assert torch.allclose(approx.sum(-1), torch.ones(2, 4), atol=1e-6)
    tail = approx.scatter(-1, top.indices, float("nan"))
    rest = (1 - top.values.sum(-1, keepdim=True)) / 7
    assert torch.allclose(tail[~tail.isnan()].view(2, 4, 7), rest.expand(2, 4, 7), atol=1e-6)  # spread evenly
    mask = torch.ones(2, 4, dtype=torch.bool)
    student = torch.randn(2, 4, 10)
    tempered = token_losses.forward_kl(student, TeacherTargets.top_k(logits, 10).logits(index), mask, temperature=2.0)
    assert torch.isclose(tempered, token_losses.forward_kl(student, logits[index], mask, temperature=2.0), atol=1e-5)
