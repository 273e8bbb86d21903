"""ULD and GOLD's hybrid (distill/cross_vocab.py) against hand computation, and against TRL's ULDLoss where TRL
is installed."""

from __future__ import annotations

import math

import pytest
import torch

from entrenar_bench.distill.cross_vocab import gold, jsd_of_probs, merge_groups, sorted_l1, uld, vocabulary_matches


def test_uld_is_the_l1_distance_of_the_sorted_probabilities_by_hand():
    teacher = torch.tensor([[0.1, 0.7, 0.2]])
    student = torch.tensor([[0.5, 0.1, 0.3, 0.1]])
    # sorted: p = 0.7 0.2 0.1 0 ; q = 0.5 0.3 0.1 0.1 -> |.2| + |.1| + 0 + |.1| = 0.4
    assert math.isclose(sorted_l1(teacher, student).item(), 0.4, abs_tol=1e-6)
    assert math.isclose(uld(teacher.repeat(3, 1), student.repeat(3, 1)).item(), 0.4, abs_tol=1e-6)


def test_uld_ignores_token_identity_and_is_zero_for_a_permutation():
    p = torch.softmax(torch.randn(5, 11), -1)
    assert torch.allclose(sorted_l1(p, p[:, torch.randperm(11)]), torch.zeros(5), atol=1e-6)


def test_uld_gradients_reach_the_student_only():
    teacher = torch.softmax(torch.randn(4, 6, requires_grad=True), -1)
    logits = torch.randn(4, 9, requires_grad=True)
    uld(teacher, torch.softmax(logits, -1)).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_a_merged_group_multiplies_the_later_tokens_probabilities():
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6]])
    merged = merge_groups(probs, [[0, 1], [2]], token_ids=[0, 1, 2])
    assert torch.allclose(merged[0], probs[0] * 0.6) and torch.allclose(merged[1], probs[2])


def test_jsd_of_probabilities_matches_its_limits():
    p, q = torch.tensor([[0.6, 0.4]]), torch.tensor([[0.3, 0.7]])
    forward = (p * (p / q).log()).sum()
    reverse = (q * (q / p).log()).sum()
    assert torch.allclose(jsd_of_probs(p, q, 0.0), forward) and torch.allclose(jsd_of_probs(p, q, 1.0), reverse)
    m = 0.5 * (p + q)
    half = 0.5 * (p * (p / m).log()).sum() + 0.5 * (q * (q / m).log()).sum()
    assert torch.allclose(jsd_of_probs(p, q, 0.5), half)


def test_gold_by_hand():
    teacher_vocab = {"a": 0, "b": 1, "x": 2}
    student_vocab = {"b": 0, "a": 1, "y": 2, "z": 3}
    t_ids, s_ids = vocabulary_matches(teacher_vocab, student_vocab)
    assert t_ids.tolist() == [0, 1] and s_ids.tolist() == [1, 0]
    p = torch.tensor([[0.5, 0.3, 0.2]])
    q = torch.tensor([[0.2, 0.4, 0.3, 0.1]])  # q(b) = .2, q(a) = .4
    out = gold(p, q, t_ids, s_ids, beta=0.5, matched_weight=0.7, unmatched_weight=0.3)
    matched = jsd_of_probs(torch.tensor([[0.5, 0.3]]), torch.tensor([[0.4, 0.2]]), 0.5)
    unmatched = abs(0.2 - 0.3) + abs(0 - 0.1)  # teacher [.2] against student [.3, .1]
    assert (torch.allclose(out["matched"], matched.mean())
            and math.isclose(out["unmatched"].item(), unmatched, abs_tol=1e-6))
    assert math.isclose(out["loss"].item(), 0.7 * matched.item() + 0.3 * unmatched, rel_tol=1e-6)
    assert math.isclose(out["unmatched_mass"].item(), 0.2, abs_tol=1e-6)
    adaptive = gold(p, q, t_ids, s_ids)  # weights by the matched share of the teacher's vocabulary: 2/3
    assert math.isclose(adaptive["loss"].item(), 2 / 3 * matched.item() + 1 / 3 * unmatched, rel_tol=1e-6)


def test_uld_agrees_with_trl_where_it_is_installed(tmp_path):
    gold_trainer = pytest.importorskip("trl.experimental.gold.gold_trainer",
                                       reason="TRL (with its experimental GOLD trainer) is not installed here; "
                                              "the hand-computed ULD test stands in for it")
    from trl.experimental.gold import GOLDConfig

    config = GOLDConfig(output_dir=str(tmp_path), uld_crossentropy_weight=0.0, uld_distillation_weight=1.0,
                        uld_student_temperature=1.0, uld_teacher_temperature=1.0, uld_skip_student_eos=False,
                        uld_skip_teacher_eos=False, use_extended_uld=False, report_to="none", use_cpu=True,
                        bf16=False)
    loss = gold_trainer.ULDLoss(config)
    torch.manual_seed(0)
    s_logits, t_logits = torch.randn(1, 6, 9), torch.randn(1, 6, 7)
    labels = torch.zeros(1, 6, dtype=torch.long)  # every position an answer position
    ids = torch.zeros(1, 6, dtype=torch.long)
    theirs = loss(s_logits, t_logits, labels, labels, ids, ids)
    mine = uld(torch.softmax(t_logits[0], -1), torch.softmax(s_logits[0], -1))
    assert torch.allclose(theirs, mine, atol=1e-5)


def test_the_cross_term_is_uld_or_gold_over_the_target_positions_of_the_aligned_teacher():
    from entrenar_bench.distill.cross_term import CrossTeacher, cross_divergence
    from entrenar_bench.distill.settings import DistillSettings

    torch.manual_seed(0)
    teacher = torch.softmax(torch.randn(2, 3, 4), -1)
    student = torch.randn(2, 3, 6)
    mask = torch.tensor([[True, False, True], [False, True, True]])
    ids = torch.arange(2)
    signal = CrossTeacher(teacher, ids, ids)
    q = torch.softmax(student[mask] / 2, -1)  # the student at T = 2; the teacher's row is aligned at T already
    by_hand = (teacher[mask].sort(-1, descending=True).values - q.sort(-1, descending=True).values[:, :4]).abs().sum(-1)
    by_hand = (by_hand + q.sort(-1, descending=True).values[:, 4:].sum(-1)).mean()
    uld_settings = DistillSettings(logit_loss="uld", temperature=2.0)
    assert torch.allclose(cross_divergence(uld_settings, student, signal, mask), by_hand)
    settings = DistillSettings(logit_loss="gold", temperature=2.0, gold_matched_weight=0.3, gold_unmatched_weight=0.7)
    expected = gold(teacher[mask], q, ids, ids, 0.5, 0.3, 0.7)["loss"]
    assert torch.allclose(cross_divergence(settings, student, signal, mask), expected)
    with pytest.raises(ValueError, match="needs a teacher aligned to another tokenization"):
        cross_divergence(DistillSettings(logit_loss="uld"), student, torch.randn(2, 3, 6), mask)
