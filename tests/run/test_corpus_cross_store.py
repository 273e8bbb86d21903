"""The teacher's stored signal across tokenizations (causal_lm_corpus_cross, distill.teacher_outputs=cached): the top-k
store a plain corpus run builds is reused by a run whose student has its own tokenizer, with no teacher forward pass;
the rows it aligns from an exact store equal the online teacher's, and from a top-k store agree with them within the
tail's approximation (the k entries and the chain rule's factors exact, ULD within twice the merged tail mass)."""

import pytest
import torch
from hydra.utils import instantiate

from entrenar_bench.distill.cross_vocab import sorted_l1
from entrenar_bench.run import job, tokenizations
from entrenar_bench.run.app import distill_settings, run
from entrenar_bench.run.model_cache import load_teacher
from entrenar_bench.tasks import task_for
from entrenar_bench.teacher_signal.plan import TeacherPlan
from data.hf_tokenizers import eos_padded_tokenizer, write_word_corpus  # noqa: F401  (fixtures)

TOP_K = 16  # of the teacher tokenizer's 300 ids


@pytest.fixture(autouse=True)
def small_stores_allowed(monkeypatch):
    """These tests read a top-16 store of a 300-id vocabulary; the refusal of small stores for uld/gold (sized for
    SmolLM2's 49,152 ids) is tested in test_cross_tokenizer.py."""
    monkeypatch.setattr(tokenizations, "CROSS_MIN_TOP_K", TOP_K)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_word_corpus(tmp_path_factory.mktemp("corpus"), seed=2)


def _overrides(corpus, tokenizer, *extra):
    return ["+experiment=lm", "data=corpus", f"data.path={corpus}", f"data.tokenizer={tokenizer}", "data.block_size=16",
            "data.train_subset=64", "teacher.train.epochs=1", "train.epochs=1", f"distill.teacher_top_k={TOP_K}",
            *extra]


@pytest.fixture
def counted_teacher(monkeypatch):
    """Every teacher a run loads, its forward passes counted."""
    calls = []

    def load(cfg, task):
        teacher, directory = load_teacher(cfg, task)
        teacher.register_forward_pre_hook(lambda module, args: calls.append(1))
        return teacher, directory

    monkeypatch.setattr(job, "load_teacher", load)
    return calls


def test_a_plain_runs_store_serves_a_cross_run_without_a_teacher_forward(compose_cfg, corpus, eos_padded_tokenizer,  # noqa: F811
                                                                       bench_home, tmp_path, counted_teacher):
    plain = run(compose_cfg(*_overrides(corpus, eos_padded_tokenizer)), tmp_path / "plain")
    assert plain["status"] == "completed" and plain["teacher_signal"]["mode"] == "cached"
    built = len(counted_teacher)
    assert built > 0  # the plain run built the store
    stores = sorted(bench_home.glob("outputs/cache/teachers/*/outputs/*/train-top16"))
    assert len(stores) == 1
    for loss in ("gold", "uld"):
        counted_teacher.clear()
        cross = run(compose_cfg(*_overrides(corpus, eos_padded_tokenizer), "data.student_tokenizer=bpe:280",
                                f"distill.logit_loss={loss}"), tmp_path / loss)
        assert cross["status"] == "completed" and counted_teacher == []  # no teacher forward pass at all
        assert cross["teacher_signal"] == {"mode": "cached", "form": f"top{TOP_K}", "tail": "spread"}
        assert 0 < cross["unmatched_mass"] < 1 and cross["metrics"]["loss"] > 0
    assert sorted(bench_home.glob("outputs/cache/teachers/*/outputs/*/train-top16")) == stores  # the same store


def test_stored_rows_agree_with_the_online_teacher(compose_cfg, corpus, eos_padded_tokenizer):  # noqa: F811
    cfg = compose_cfg(*_overrides(corpus, eos_padded_tokenizer), "data.student_tokenizer=bpe:280",
                      "distill.logit_loss=gold")
    data = instantiate(cfg.data)
    data.setup("fit")
    task = task_for(data)
    teacher, teacher_dir = load_teacher(cfg, task.teacher_task())
    plan = TeacherPlan.make(cfg, distill_settings(cfg), task, False)
    reader = plan.build(task, teacher, teacher_dir, torch.device("cpu"))["train"]
    assert reader.layout.targets
    batch = task.batch(data.batch_tensors("train", 32))
    with torch.no_grad():
        online = task.teacher_forward(teacher, batch).logits
        logits = task.teacher_task().forward(teacher, batch.teacher_inputs).logits
    keep = batch.mask & online.aligned
    exact = task.stored_teacher(logits, batch)
    assert torch.allclose(exact.probs[keep], online.probs[keep], atol=1e-6)  # the exact store: the online rows
    stored = task.stored_teacher(reader.read(batch.index), batch)
    p, p_hat = online.probs[keep].double(), stored.probs[keep].double()
    top = reader.read(batch.index).ids.gather(1, batch.first[..., None].expand(-1, -1, TOP_K))[keep]
    assert torch.allclose(p_hat.gather(-1, top), p.gather(-1, top), rtol=2e-3, atol=1e-7)  # the k entries (float16)
    assert torch.allclose(p_hat.sum(-1), p.sum(-1), rtol=2e-3)  # the chain rule's factors: exact, in the top k or not
    merged_tail = p.sum(-1) - p.gather(-1, top).sum(-1)
    assert merged_tail.mean() > 0.01  # the tail matters here
    q = torch.softmax(torch.randn(len(p), task.vocab_size, generator=torch.Generator().manual_seed(0)), -1).double()
    gap = (sorted_l1(p_hat, q) - sorted_l1(p, q)).abs()
    assert (gap <= 2 * merged_tail + 1e-3).all()  # ULD: only the tail's shape differs
