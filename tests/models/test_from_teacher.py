"""A student made of a teacher's layers: the chosen layers' weights, the teacher's embeddings, norm and
head, the teacher's vocabulary; and fine-tuning that student itself (no second base student)."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import CONF_DIR
from entrenar_bench.run.finetune import build_student, load_base_student
from entrenar_bench.models.from_teacher import from_teacher
from entrenar_bench.models.layers import select_layers
from entrenar_bench.models.pretrained import uses_student_as_base
from entrenar_bench.tasks.causal_lm import CausalLMTask
from pretrained_dirs import save_llama, word_tokenizer


@pytest.mark.parametrize("spec, expected", [
    ("first:3", [0, 1, 2]), ("spread:4", [0, 10, 19, 29]), ("spread:1", [0]), ("spread:30", list(range(30))),
    ([0, 5, 29], [0, 5, 29]), (7, [7]),
])
def test_layer_choices(spec, expected):
    assert select_layers(spec, 30) == expected


@pytest.mark.parametrize("spec, message", [
    ("first:0", "K must be 1..30"), ("spread:31", "K must be 1..30"), ("last:2", "first:K, spread:K"),
    ([3, 1], "must increase"), ([0, 30], "each in 0..29"), ([], "non-empty"), ([True], "non-empty"),
])
def test_bad_layer_choices_name_the_problem(spec, message):
    with pytest.raises(ValueError, match=message):
        select_layers(spec, 30)


def test_the_student_starts_as_the_chosen_teacher_layers(tmp_path):
    teacher = save_llama(tmp_path / "teacher", layers=5, tokenizer=word_tokenizer())
    student = from_teacher(str(tmp_path / "teacher"), [1, 4], vocab_size=len(word_tokenizer()))
    assert student.config.num_hidden_layers == 2 and student.config.teacher_layers == [1, 4]
    t, s = teacher.state_dict(), student.state_dict()
    for j, i in enumerate([1, 4]):
        for name, value in teacher.model.layers[i].state_dict().items():
            assert torch.equal(s[f"model.layers.{j}.{name}"], value), (j, name)
    for name in ("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"):
        assert torch.equal(s[name], t[name])
    assert student.get_input_embeddings().num_embeddings == teacher.get_input_embeddings().num_embeddings
    ids = torch.randint(0, len(word_tokenizer()), (2, 7))
    assert student.eval()(input_ids=ids).logits.shape == (2, 7, teacher.config.vocab_size)
    assert not torch.equal(student(input_ids=ids).logits, teacher.eval()(input_ids=ids).logits)  # fewer layers
    every = from_teacher(str(tmp_path / "teacher"), "first:5")  # all layers kept: the teacher itself
    assert torch.allclose(every.eval()(input_ids=ids).logits, teacher(input_ids=ids).logits, atol=1e-5)
    with pytest.raises(ValueError, match="fewer than the data's vocabulary"):
        from_teacher(str(tmp_path / "teacher"), "first:1", vocab_size=1000)


def test_the_config_builds_it_from_the_teachers_directory(tmp_path):
    save_llama(tmp_path / "teacher", layers=3, tokenizer=word_tokenizer())
    cfg = OmegaConf.create({"teacher": {"model": {"path": str(tmp_path / "teacher")}},
                            "paths": {"cache_dir": str(tmp_path / "cache")},
                            "student": OmegaConf.load(CONF_DIR / "student" / "from_teacher.yaml")})
    cfg.student.layers = "spread:2"
    student = instantiate(cfg.student.model, vocab_size=len(word_tokenizer()))
    assert student.config.teacher_layers == [0, 2]


class Data:
    """A data module's face as the causal-LM task reads it here: only the model's sizes."""

    def model_kwargs(self):
        return {"vocab_size": len(word_tokenizer())}


def _base_students(cfg) -> set[Path]:
    return set((Path(cfg.paths.cache_dir) / "base_students").glob("*"))


def test_fine_tuning_a_pretrained_student_fine_tunes_that_student(compose_cfg, tmp_path):
    save_llama(tmp_path / "teacher", layers=3, tokenizer=word_tokenizer())
    overrides = ["+experiment=smollm2", f"teacher.model.path={tmp_path / 'teacher'}", "student.layers=first:2"]
    assert not uses_student_as_base(compose_cfg(*overrides))  # finetune=none
    assert not uses_student_as_base(compose_cfg("+experiment=lm", "finetune=lora"))  # a config-built base is named
    before = _base_students(compose_cfg(*overrides))
    for method in ("full", "lora"):
        cfg = compose_cfg(*overrides, f"finetune={method}", "finetune.r=4")
        assert uses_student_as_base(cfg)
        model, directory = load_base_student(cfg, CausalLMTask(Data()))
        assert directory is None and model.config.teacher_layers == [0, 1]
        student, info = build_student(cfg, CausalLMTask(Data()), (model, directory))
        assert info["base"] == {"name": "from_teacher", "cache": None, "accuracy": None,
                                "params": info["base"]["params"]}
        assert info["base"]["params"] == sum(p.numel()
                                             for p in from_teacher(str(tmp_path / "teacher"), "first:2").parameters())
        assert (info["trainable"] == info["base"]["params"]) == (method == "full"), (method, info)
        assert 0 < info["trainable"] <= info["base"]["params"]
    assert _base_students(cfg) == before  # nothing pre-trained, nothing copied
