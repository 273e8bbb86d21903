"""teacher_signal/ (sizing, shards, reader, builder): exact logits back bit for bit, top-k as torch.topk gives it
in 388 bytes per position at k = 64, a killed build resumed from its last shard, damaged shards named once and rebuilt
(a pickle never unpickled), top-k reduced from the exact store, one build under the lock, the size refused
in one line."""

from __future__ import annotations

import logging
import pickle
import threading
import time

import numpy as np
import pytest
import torch

from entrenar_bench.errors import ConfigError
from entrenar_bench.teacher_signal import builder, shards, sizing

ROWS, ROW_SHAPE, VOCAB = 23, (6,), 97
PACKAGE = "entrenar_bench.teacher_signal"  # the loggers of its modules


class Teacher:
    """Fixed logits per row, looked up by the row indices it is given; counts its calls, and can fail
    ("be killed") at one of them or take its time."""

    def __init__(self, rows=ROWS, row_shape=ROW_SHAPE, vocab=VOCAB, dtype=torch.float32, fail_at=None, delay=0.0):
        generator = torch.Generator().manual_seed(0)
        self.table = (3 * torch.randn(rows, *row_shape, vocab, generator=generator)).to(dtype)
        self.inputs = torch.arange(rows)
        self.calls: list[list[int]] = []
        self.fail_at, self.delay = fail_at, delay

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        self.calls.append(rows.tolist())
        if len(self.calls) == self.fail_at:
            raise RuntimeError("killed")
        time.sleep(self.delay)
        return self.table[rows]


def store_with_shards(tmp_path, rows_per_shard: int, per_position: int, row_shape=ROW_SHAPE) -> builder.TeacherStore:
    """A store whose shards hold ``rows_per_shard`` rows (a multiple of the chunk) of ``per_position`` bytes."""
    shard_bytes = rows_per_shard * int(np.prod(row_shape)) * per_position
    return builder.TeacherStore(tmp_path / "outputs", shard_bytes=shard_bytes)


def build(store, teacher, top_k=0, chunk_rows=2):
    return store.build("train", teacher, teacher.inputs, top_k=top_k, chunk_rows=chunk_rows)


def shard_file(reader, shard: int, name: str):
    return reader.path / reader.shards[str(shard)]["files"][name]["file"]


INDEX = torch.tensor([22, 0, 5, 5, 13, 8, 21, 1])  # out of order, repeated, across shards


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("row_shape", [ROW_SHAPE, ()], ids=["sequences", "examples"])
def test_exact_logits_come_back_bit_for_bit(tmp_path, dtype, row_shape):
    teacher = Teacher(row_shape=row_shape, dtype=dtype)
    store = store_with_shards(tmp_path, 4, VOCAB * teacher.table.element_size(), row_shape)
    reader = build(store, teacher)
    assert reader.layout.shard_rows == 4 and len(reader.shards) == 6 and len(teacher.calls) == 12
    logits = reader.logits(INDEX)
    assert logits.dtype == dtype and torch.equal(logits.view(torch.uint8), teacher.table[INDEX].view(torch.uint8))
    again = Teacher(row_shape=row_shape, dtype=dtype)
    assert torch.equal(build(store, again).logits(INDEX), logits) and again.calls == []  # stored: not recomputed


@pytest.mark.parametrize("row_shape", [ROW_SHAPE, ()], ids=["sequences", "examples"])
def test_top_k_is_what_topk_gives_stored_in_float16(tmp_path, row_shape):
    teacher = Teacher(row_shape=row_shape)
    reader = build(store_with_shards(tmp_path, 4, 6 * 5 + 4, row_shape), teacher, top_k=5)
    assert len(reader.shards) == 6
    sparse = reader.sparse(INDEX)
    log_probs = torch.log_softmax(teacher.table[INDEX].double(), dim=-1)
    values, ids = log_probs.topk(5, dim=-1)
    assert sparse.ids.dtype == torch.int64 and torch.equal(sparse.ids, ids)
    assert sparse.log_probs.dtype == torch.float32
    assert ((sparse.log_probs - values).abs() <= values.abs() * 2**-11 + 2**-24).all()  # float16's rounding
    tail = 1 - values.exp().sum(dim=-1)
    assert sparse.tail.shape == (len(INDEX), *row_shape) and torch.allclose(sparse.tail.double(), tail, rtol=1e-5)
    dense = reader.logits(INDEX)
    assert dense.shape == (len(INDEX), *row_shape, VOCAB)
    assert torch.equal(dense.gather(-1, sparse.ids), sparse.log_probs)
    spread = dense.scatter(-1, sparse.ids, float("nan"))
    expected = (sparse.tail / (VOCAB - 5)).log().unsqueeze(-1).expand_as(spread)
    assert torch.equal(spread.nan_to_num(0), expected.masked_fill(spread.isnan(), 0))


def test_top_k_above_the_vocabulary_keeps_every_token(tmp_path):
    teacher = Teacher()
    reader = build(builder.TeacherStore(tmp_path), teacher, top_k=500)
    assert reader.sparse(INDEX).ids.shape[-1] == VOCAB and reader.sparse(INDEX).tail.abs().max() < 1e-6
    assert torch.allclose(reader.logits(INDEX).softmax(-1), teacher.table[INDEX].softmax(-1), atol=1e-3)


def test_top_64_takes_388_bytes_per_position(tmp_path):
    teacher = Teacher(rows=16, row_shape=(64,), vocab=4096)
    reader = build(builder.TeacherStore(tmp_path), teacher, top_k=64, chunk_rows=4)
    assert reader.positions == 1024 and sizing.bytes_per_position(49_152, 64) == 388
    headers = 128 * 3 * len(reader.shards)  # one .npy header per file
    assert reader.size_bytes == sizing.estimate_bytes(reader.positions, 4096, 64) + headers
    assert reader.size_bytes / reader.positions <= 400


def test_targets_keep_the_log_prob_of_the_token_read_next_in_the_top_k_or_not(tmp_path, caplog):
    teacher = Teacher()
    next_ids = torch.randint(0, VOCAB, (ROWS, *ROW_SHAPE), generator=torch.Generator().manual_seed(1))
    next_ids[:, -1] = -1  # a row's last position reads nothing: probability 1
    store = store_with_shards(tmp_path, 4, 6 * 5 + 8)
    plain = build(store, teacher, top_k=5)
    assert not plain.layout.targets and plain.sparse(INDEX).targets is None
    with caplog.at_level(logging.WARNING, logger=PACKAGE):
        reader = store.build("train", teacher, teacher.inputs, top_k=5, chunk_rows=2, next_ids=next_ids)
    assert "not 23 rows of top5 with targets; rebuilding the store" in caplog.text  # one without them is rebuilt
    sparse = reader.sparse(INDEX)
    log_probs = torch.log_softmax(teacher.table[INDEX].double(), dim=-1)
    expected = log_probs.gather(-1, next_ids[INDEX].clamp_min(0)[..., None])[..., 0]
    expected[:, -1] = 0.0
    outside = ~(sparse.ids == next_ids[INDEX][..., None]).any(-1)
    assert outside[:, :-1].float().mean() > 0.5  # most read tokens are outside the top 5: the targets keep them
    assert sparse.targets.dtype == torch.float32 and torch.allclose(sparse.targets.double(), expected, atol=1e-5)
    assert reader.layout.targets and store.build("train", teacher, teacher.inputs, top_k=5) is not None
    calls = len(teacher.calls)
    again = store.build("train", teacher, teacher.inputs, top_k=5, next_ids=next_ids)  # complete: read, not rebuilt
    assert len(teacher.calls) == calls and again.layout.targets
    assert sizing.bytes_per_position(49_152, 64, targets=True) == 392
    assert reader.size_bytes == sizing.estimate_bytes(reader.positions, VOCAB, 5, targets=True) + 128 * 4 * 6


def test_a_killed_build_goes_on_from_its_last_shard(tmp_path):
    store = store_with_shards(tmp_path, 4, VOCAB * 4)  # 6 shards of 2 chunks of 2 rows
    with pytest.raises(RuntimeError, match="killed"):
        build(store, Teacher(fail_at=5))  # shards 0 and 1 written, killed in shard 2
    leftover = store.path("train", 0) / ".shard-00002.logits.npy.x1y2.tmp"
    leftover.write_bytes(b"half a file")
    teacher = Teacher()
    reader = build(store, teacher)
    assert len(teacher.calls) == 12 - 4 and teacher.calls[0] == [8, 9]  # only the missing shards' chunks
    assert torch.equal(reader.logits(teacher.inputs), teacher.table) and not leftover.exists()


class Trap:
    """Unpickling this sets :data:`SPRUNG`: a store that unpickled a shard would be caught by it."""

    def __reduce__(self):
        return spring, ()


SPRUNG = []


def spring():
    SPRUNG.append(True)
    return "unpickled"


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def reshape(path):
    array = np.load(path)
    np.save(path, array.reshape(-1, array.shape[-1]))  # the same bytes, another shape


def retype(path):
    array = np.load(path)
    np.save(path, array.view(np.int32))  # the same bytes, not the stored dtype


def scramble(path):
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))  # not a .npy at all


def pickled(path):
    size = path.stat().st_size
    payload = pickle.dumps(Trap())
    path.write_bytes(payload + b"\0" * (size - len(payload)))  # the size the manifest expects


@pytest.mark.parametrize("damage", [truncate, reshape, retype, scramble, pickled])
def test_a_damaged_shard_is_named_once_and_rebuilt(tmp_path, caplog, damage):
    store = store_with_shards(tmp_path, 4, VOCAB * 4)
    original = build(store, Teacher())
    bad = shard_file(original, 3, "logits")
    damage(bad)
    teacher = Teacher()
    with caplog.at_level(logging.INFO, logger=PACKAGE):
        reader = build(store, teacher)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and str(bad) in warnings[0] and "damaged" in warnings[0], warnings
    assert teacher.calls == [[12, 13], [14, 15]]  # shard 3 alone
    assert torch.equal(reader.logits(teacher.inputs), teacher.table) and not SPRUNG


def test_a_changed_byte_is_caught_by_the_digest_when_read_and_rebuilt_next(tmp_path, caplog):
    store = store_with_shards(tmp_path, 4, 6 * 5 + 4)
    reader = build(store, Teacher(), top_k=5)
    bad = shard_file(reader, 1, "log_probs")
    with open(bad, "r+b") as f:  # same size, same header: only the digest can tell
        f.seek(-3, 2)
        byte = f.read(1)
        f.seek(-3, 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert store.open("train", 5)  # sizes and shapes are fine
    with pytest.raises(shards.DamagedStore, match="shard-00001.log_probs.npy is damaged .*SHA-256") as damaged:
        reader.sparse(torch.tensor([0, 5]))  # row 5 is in shard 1
    assert "\n" not in str(damaged.value)
    teacher = Teacher()
    with caplog.at_level(logging.WARNING, logger=PACKAGE):
        again = build(store, teacher, top_k=5)
    assert teacher.calls == [[4, 5], [6, 7]] and not caplog.records  # dropped already: just rebuilt
    assert torch.equal(again.sparse(teacher.inputs).ids, Teacher().table.log_softmax(-1).topk(5).indices)


def test_a_damaged_manifest_is_named_once_and_the_store_rebuilt(tmp_path, caplog):
    store = builder.TeacherStore(tmp_path)
    build(store, Teacher())
    manifest = store.path("train", 0) / shards.MANIFEST
    manifest.write_text('{"format": "something else"')
    teacher = Teacher()
    with caplog.at_level(logging.WARNING, logger=PACKAGE):
        reader = build(store, teacher)
    assert len(caplog.records) == 1 and str(manifest) in caplog.records[0].getMessage()
    assert len(teacher.calls) == 12 and torch.equal(reader.logits(INDEX), teacher.table[INDEX])


def test_top_k_is_reduced_from_the_exact_store_without_the_teacher(tmp_path):
    store = builder.TeacherStore(tmp_path / "a")
    with pytest.raises(shards.StoreMissing):
        store.reduce("train", 5)
    build(store, Teacher())
    untouched = Teacher(fail_at=1)
    reduced = build(store, untouched, top_k=5, chunk_rows=3)
    direct = build(builder.TeacherStore(tmp_path / "b"), Teacher(), top_k=5, chunk_rows=3)
    assert untouched.calls == []
    got, want = reduced.sparse(INDEX), direct.sparse(INDEX)
    assert got.vocab_size == want.vocab_size
    assert all(torch.equal(getattr(got, name), getattr(want, name)) for name in ("ids", "log_probs", "tail"))
    top_7 = Teacher().table[INDEX].log_softmax(-1).topk(7).indices
    assert torch.equal(store.reduce("train", 7).sparse(INDEX).ids, top_7)


def test_parallel_builds_run_the_teacher_once(tmp_path):
    store = builder.TeacherStore(tmp_path)
    teacher = Teacher(delay=0.02)
    readers = []
    threads = [threading.Thread(target=lambda: readers.append(build(store, teacher))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(readers) == 2 and len(teacher.calls) == 12  # one build's chunks
    assert all(torch.equal(r.logits(INDEX), teacher.table[INDEX]) for r in readers)


def test_size_estimate_and_the_one_line_refusal():
    assert sizing.estimate_bytes(100, 49_152, 64) == 38_800
    assert sizing.estimate_bytes(100, 49_152, 0) == 100 * 49_152 * 4
    assert sizing.estimate_bytes(100, 49_152, 0, logits_bytes=2) == 100 * 49_152 * 2
    assert sizing.human_bytes(1.21e9) == "1.21 GB" and sizing.human_bytes(388) == "388 B"
    assert sizing.check_store_size(100_096, 49_152, 64, limit_gb=1) == 100_096 * 388
    with pytest.raises(sizing.StoreTooLarge) as refused:
        sizing.check_store_size(100_096, 49_152, 0, limit_gb=1)
    line = str(refused.value)
    assert isinstance(refused.value, ValueError) and isinstance(refused.value, ConfigError) and "\n" not in line
    assert "19.7 GB" in line and "limits.max_teacher_store_gb=1" in line
    assert "top-64 form would take 38.8 MB" in line and "distill.teacher_top_k=64" in line
    with pytest.raises(sizing.StoreTooLarge, match="top64 teacher store: .* = 38.8 MB, above"):
        sizing.check_store_size(100_096, 49_152, 64, limit_gb=0.01)
    assert [sizing.default_top_k(v) for v in (32, 1024, 1025, 49_152)] == [0, 0, 64, 64]
    assert [sizing.form_name(k) for k in (0, 64)] == ["exact", "top64"]


def test_bad_requests_are_one_line_errors(tmp_path):
    store = builder.TeacherStore(tmp_path)
    with pytest.raises(shards.StoreMissing, match="no complete teacher store"):
        store.open("val", 0)
    reader = build(store, Teacher())
    with pytest.raises(IndexError, match=f"row {ROWS} is outside the {ROWS} rows"):
        reader.logits(torch.tensor([0, ROWS]))
    with pytest.raises(ValueError, match="holds exact logits"):
        reader.sparse(INDEX)
    with pytest.raises(ValueError, match="needs rows and chunk_rows >= 1"):
        store.build("val", Teacher(), torch.arange(0))
    with pytest.raises(ValueError, match="compute_chunk gave"):
        store.build("val", lambda rows: torch.zeros(len(rows) + 1, VOCAB), torch.arange(4))
