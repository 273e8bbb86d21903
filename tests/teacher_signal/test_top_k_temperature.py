"""The top-k teacher against the exact one on a realistic peaked teacher (V = 49,152, k = 64, Zipf-like logits,
top-1 mass ~0.6, tail ~0.013) and a student near it: at T = 1 the default tail rule (bucket) gives the forward
KL within 5 % and the gradient with cosine ≥ 0.99; at T = 2 and 4 a top-k store is refused, in the loss and in
one line before launch naming the exact form and its size."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import LM_FAST
from entrenar_bench.distill import losses
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.errors import ConfigError
from entrenar_bench.run.checks import validate_config
from entrenar_bench.teacher_signal.builder import TeacherStore
from entrenar_bench.teacher_signal.sizing import TopKAtTemperature, check_temperature

V, K, POSITIONS = 49_152, 64, 32


@pytest.fixture(scope="module")
def peaked(tmp_path_factory):
    """Zipf-like teacher logits (exponent ~2 over a random ranking per position), a student 0.5 nats of noise away,
    and the teacher's top-64 form as the store keeps it (float16 log-probs, the tail summed apart)."""
    generator = torch.Generator().manual_seed(0)
    ranks = torch.stack([torch.randperm(V, generator=generator) for _ in range(POSITIONS)]) + 1
    teacher = -(2.0 + 0.1 * torch.randn(POSITIONS, 1, generator=generator)) * ranks.float().log()
    student = teacher + 0.5 * torch.randn(POSITIONS, V, generator=generator)
    rows = teacher.view(1, POSITIONS, V)
    stored = TeacherStore(tmp_path_factory.mktemp("store")).build("train", lambda i: rows[i], torch.arange(1), K)
    return teacher.view(1, POSITIONS, V), student.view(1, POSITIONS, V), stored.sparse(torch.arange(1))


def value_and_grad(settings, student, teacher):
    student = student.clone().requires_grad_()
    value = losses.settings_divergence(settings, student, teacher)
    value.backward()
    return value.item(), student.grad.flatten()


def test_the_teacher_is_realistic(peaked):
    teacher, _, top_k = peaked
    p = teacher.softmax(-1)
    assert 0.5 < p.max(-1).values.mean() < 0.7 and 0.005 < top_k.tail.mean() < 0.03


@pytest.mark.parametrize("rule, tolerance", [("bucket", 0.05), ("drop", 0.05)])
def test_at_t1_the_top_k_teacher_matches_the_exact_one(peaked, rule, tolerance):
    teacher, student, top_k = peaked
    settings = DistillSettings(temperature=1.0, top_k_tail=rule)
    exact, exact_grad = value_and_grad(settings, student, teacher)
    value, grad = value_and_grad(settings, student, top_k)
    assert abs(value / exact - 1) <= tolerance
    assert value <= exact  # a coarse-grained KL is a lower bound (data-processing inequality)
    assert F.cosine_similarity(grad, exact_grad, dim=0) >= 0.99


def test_bucket_is_the_default_and_its_gradient_reaches_the_tail(peaked):
    _, student, top_k = peaked
    assert DistillSettings().top_k_tail == "bucket"
    _, grad = value_and_grad(DistillSettings(temperature=1.0), student, top_k)
    outside = torch.ones(V, dtype=torch.bool).scatter_(0, top_k.ids[0, 0], False)
    assert grad.view(POSITIONS, V)[0, outside].abs().sum() > 0


@pytest.mark.parametrize("temperature", [2.0, 4.0])
def test_above_t1_a_top_k_store_is_refused(peaked, temperature):
    _, student, top_k = peaked
    with pytest.raises(ValueError, match="needs T = 1"):
        value_and_grad(DistillSettings(temperature=temperature), student, top_k)
    with pytest.raises(TopKAtTemperature) as refused:
        check_temperature(POSITIONS, V, K, temperature)
    line = str(refused.value)
    assert isinstance(refused.value, ConfigError) and "\n" not in line
    assert "distill.teacher_top_k=0 (6.29 MB for 32 positions)" in line and "top64" in line
    check_temperature(POSITIONS, V, 0, temperature)  # the exact form is fine at any temperature
    check_temperature(POSITIONS, V, K, 1.0)


def test_the_refusal_comes_before_launch_when_k_is_set(compose_cfg):
    with pytest.raises(ConfigError, match=r"distill.temperature=2 with a top8 teacher store: .*distill.teacher_top_k=0 "
                                          r"\(393 kB for 3,072 positions\)"):
        validate_config(compose_cfg(*LM_FAST, "distill.teacher_top_k=8", "distill.temperature=2"))
    validate_config(compose_cfg(*LM_FAST, "distill.teacher_top_k=8", "distill.temperature=1"))
    validate_config(compose_cfg(*LM_FAST, "distill.teacher_top_k=8", "distill.temperature=2",
                                "distill.teacher_outputs=online"))  # the teacher runs every step: exact


def wide_corpus(path, characters=1_100, documents=24, length=300):
    """Plain text over more than 1,024 characters: the char tokenizer's vocabulary defaults to top-64."""
    generator = torch.Generator().manual_seed(0)
    alphabet = [chr(0x4E00 + i) for i in range(characters)]
    text = ["".join(alphabet)] + ["".join(alphabet[i] for i in torch.randint(characters, (length,),
                                                                                generator=generator).tolist())
                                  for _ in range(documents)]
    path.write_text("\n\n".join(text) + "\n", encoding="utf-8")
    return path


def test_the_refusal_holds_when_k_is_defaulted_by_the_vocabulary(compose_cfg, tmp_path):
    corpus = wide_corpus(tmp_path / "wide.txt")
    overrides = ["+experiment=lm", "data=corpus", f"data.path={corpus}", "data.tokenizer=char", "data.block_size=32"]
    with pytest.raises(ConfigError, match=r"with a top64 teacher store: .*distill.teacher_top_k=0"):
        validate_config(compose_cfg(*overrides, "distill.temperature=4"))
    validate_config(compose_cfg(*overrides, "distill.temperature=1"))
    validate_config(compose_cfg(*overrides, "distill.temperature=4", "distill.teacher_top_k=0"))


def test_the_image_task_is_refused_too_unless_it_runs_the_teacher_online(compose_cfg):
    with pytest.raises(ConfigError, match=r"distill.temperature=4 with a top3 teacher store"):
        validate_config(compose_cfg("distill=kd", "distill.teacher_top_k=3"))
    validate_config(compose_cfg("distill=kd", "distill.teacher_top_k=3", "train.augment_shift=1"))  # online
