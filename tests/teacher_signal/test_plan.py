"""teacher_signal/plan.py: one plan per run — form, splits, cached or online, stored or to build, size — and store
keys that follow the data's contents (an in-place edit of the corpus or the tokenizer builds anew) but not the
keys that change only the student's training rows (the held-out stores are shared)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate

from conftest import LM_FAST
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.files import content_digests
from entrenar_bench.run.model_cache import model_key
from entrenar_bench.tasks import task_for
from entrenar_bench.teacher_signal.plan import TeacherPlan
from entrenar_bench.teacher_signal.sizing import StoreTooLarge


class Teacher(torch.nn.Module):
    """A causal LM's interface with fixed logits per token id; counts the rows it is run on."""

    def __init__(self, vocab: int):
        super().__init__()
        self.table = torch.nn.Embedding(vocab, vocab)
        self.rows = 0

    def forward(self, input_ids, **_):
        self.rows += len(input_ids)
        return SimpleNamespace(logits=self.table(input_ids), hidden_states=None, attentions=None)


def plan_of(cfg, settings=None):
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    task = task_for(datamodule)
    return TeacherPlan.make(cfg, settings or DistillSettings(temperature=1.0), task, augmented=False), task


def test_the_plan_of_a_language_model_run(compose_cfg):
    plan, task = plan_of(compose_cfg(*LM_FAST))
    assert (plan.form, plan.cached, plan.online, plan.splits) == ("exact", True, False, ("train", "val", "test"))
    assert plan.rows == {"train": 64, "val": 64, "test": 64} and plan.positions["train"] == 64 * 16
    assert plan.size_bytes == 3 * 64 * 16 * 32 * 4 and plan.batch_bytes(10) == 10 * 32 * 4
    online, _ = plan_of(compose_cfg(*LM_FAST), DistillSettings(teacher_outputs="online", teacher_top_k=4))
    assert (online.form, online.splits, online.batch_bytes(10)) == ("top4", ("val", "test"), 0)
    assert online.record() == {"mode": "online", "form": "top4",
                               "teacher_kl": "top4 store, tail spread evenly over the other tokens"}
    small = TeacherPlan(**{**plan.__dict__, "limit_gb": 1e-6})
    with pytest.raises(StoreTooLarge, match="exact teacher store: 3,072 positions"):
        small.check()


def test_held_out_stores_are_shared_when_only_the_training_subset_changes(compose_cfg):
    a, _ = plan_of(compose_cfg(*LM_FAST))
    b, _ = plan_of(compose_cfg(*LM_FAST, "data.train_subset=32", "data.eval_batch_size=64"))
    assert a.keys["val"] == b.keys["val"] and a.keys["test"] == b.keys["test"]
    assert a.keys["train"] != b.keys["train"] and b.rows["train"] == 32
    c, _ = plan_of(compose_cfg(*LM_FAST, "data.split_seed=1"))  # other held-out rows: other stores
    assert c.keys["val"] != a.keys["val"]


def test_an_in_place_edit_of_the_corpus_builds_the_teacher_store_anew(compose_cfg, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(f"document {i}: the cat sat on the mat {i % 7}" for i in range(60)) + "\n")
    overrides = ["+experiment=lm", "data=corpus", f"data.path={corpus}", "data.tokenizer=char", "data.block_size=16",
                 "distill.teacher_top_k=4"]
    cfg = compose_cfg(*overrides)
    before, task = plan_of(cfg)
    teacher, directory = Teacher(task.vocab_size), tmp_path / "teacher"
    before.build(task, teacher, directory, torch.device("cpu"))
    assert before.stored(directory) == {"train": True, "val": True, "test": True} and teacher.rows > 0
    built, teacher.rows = teacher.rows, 0
    before.build(task, teacher, directory, torch.device("cpu"))
    assert teacher.rows == 0  # stored: read, not recomputed
    teacher_key = model_key(cfg.teacher, cfg.data, (), task.datamodule.content_keys)

    corpus.write_text(corpus.read_text().replace("cat sat", "sat cat"))  # in place: same path, same vocabulary
    after, task = plan_of(compose_cfg(*overrides))
    assert all(after.keys[split] != before.keys[split] for split in after.splits)
    assert after.stored(directory) == {"train": False, "val": False, "test": False}
    after.build(task, teacher, directory, torch.device("cpu"))
    assert teacher.rows == built  # every split built anew
    assert model_key(cfg.teacher, cfg.data, (), task.datamodule.content_keys) != teacher_key  # the teacher too
    assert after.data_key["contents"]["path"] != before.data_key["contents"]["path"]


def test_an_in_place_edit_of_the_tokenizer_directory_changes_the_keys(tmp_path):
    tokenizer = tmp_path / "tok"
    tokenizer.mkdir()
    (tokenizer / "tokenizer.json").write_text('{"model": {"vocab": {"a": 0}}}')
    data = {"path": str(tmp_path / "missing.txt"), "tokenizer": str(tokenizer), "block_size": 16}
    first = content_digests(data, ("path", "tokenizer"))
    assert set(first) == {"tokenizer"}  # a path that does not exist is left to the data's own checks
    (tokenizer / "tokenizer.json").write_text('{"model": {"vocab": {"b": 0}}}')
    assert content_digests(data, ("path", "tokenizer")) != first
    assert content_digests({"tokenizer": "char"}, ("tokenizer",)) == {}
