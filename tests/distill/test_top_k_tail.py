"""distill/losses.py's tail rules for a top-k teacher: every divergence on the coarse distributions built by hand
(``bucket``: the k ids and the tail as one category; ``drop``: the k ids renormalised), in one piece and chunked,
with ``distill.top_k_tail`` choosing the rule in the objective and the spread rule left as it was."""

from __future__ import annotations

import pytest
import torch

from entrenar_bench.distill import losses as L
from entrenar_bench.distill.settings import DistillSettings

B, T, V, K = 2, 5, 11, 3
GEN = torch.Generator().manual_seed(7)
ZS, ZT = 2 * torch.randn(B, T, V, generator=GEN), 2 * torch.randn(B, T, V, generator=GEN)
MASK = torch.rand(B, T, generator=GEN) > 0.3


def top_k(logits, k=K):
    values, ids = torch.log_softmax(logits, dim=-1).topk(k, dim=-1)
    tail = 1 - values.exp().sum(-1)
    return L.TopKTeacher(ids, values, V, tail)


def value_and_grad(name, student, teacher, chunk=0, temperature=1.0):
    student = student.clone().requires_grad_()
    value = L.token_divergence(name, student, teacher, MASK, temperature=temperature, chunk_tokens=chunk)
    value.backward()
    return value.detach(), student.grad


def by_hand(rule, student, teacher):
    """The coarse student (a differentiable function of ``student``) and teacher, built directly."""
    log_q = torch.log_softmax(student, dim=-1)
    top = log_q.gather(-1, teacher.ids)
    if rule == "drop":
        return student.gather(-1, teacher.ids), teacher.log_probs
    rest = torch.log1p(-top.exp().sum(-1, keepdim=True).clamp(max=1 - 1e-7))
    return torch.cat([top, rest], -1), torch.cat([teacher.log_probs, teacher.tail.log().unsqueeze(-1)], -1)


@pytest.mark.parametrize("rule, temperature", [("bucket", 1.0), ("drop", 1.0), ("drop", 2.5)])
@pytest.mark.parametrize("name", list(L.TOKEN_LOSSES))
def test_each_divergence_compares_the_coarse_distributions(name, rule, temperature):
    teacher = top_k(ZT)._replace(tail_rule=rule)
    student = ZS.clone().requires_grad_()
    coarse_student, coarse_teacher = by_hand(rule, student, teacher)
    expected = L.token_divergence(name, coarse_student, coarse_teacher, MASK, temperature=temperature)
    expected.backward()
    for chunk in (0, 4):
        value, grad = value_and_grad(name, ZS, teacher, chunk, temperature)
        torch.testing.assert_close(value, expected.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(grad, student.grad, rtol=1e-4, atol=1e-6)


def test_the_bucket_kl_is_a_lower_bound_and_the_spread_rule_is_unchanged():
    exact = L.forward_kl(ZS, ZT, MASK)
    bucket = L.forward_kl(ZS, top_k(ZT)._replace(tail_rule="bucket"), MASK)
    assert 0 < bucket <= exact
    spread = top_k(ZT)
    assert spread.tail_rule == "spread"  # a TopKTeacher read from a store keeps the former rule (teacher_kl)
    torch.testing.assert_close(L.forward_kl(ZS, spread, MASK), L.forward_kl(ZS, spread.logits(), MASK))


def test_the_setting_chooses_the_rule_in_the_objective():
    teacher = top_k(ZT)
    for rule in ("bucket", "drop", "spread"):
        settings = DistillSettings(temperature=1.0, top_k_tail=rule)
        got = L.settings_divergence(settings, ZS, teacher, MASK)
        torch.testing.assert_close(got, L.forward_kl(ZS, teacher._replace(tail_rule=rule), MASK))
    with pytest.raises(ValueError, match="needs T = 1"):
        L.settings_divergence(DistillSettings(temperature=4.0), ZS, teacher, MASK)
    with pytest.raises(ValueError, match="unknown top-k tail rule 'flat'"):
        L.forward_kl(ZS, teacher._replace(tail_rule="flat"), MASK)


def test_a_top_k_as_large_as_the_vocabulary_has_no_tail_bucket():
    teacher = top_k(ZT, V)._replace(tail_rule="bucket")
    torch.testing.assert_close(L.forward_kl(ZS, teacher, MASK), L.forward_kl(ZS, ZT, MASK), rtol=1e-5, atol=1e-6)
