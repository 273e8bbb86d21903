"""The pruning settings of a from-teacher student, checked before launch (ConfigError, one line, exit 2).

Read cheaply: the teacher's ``config.json`` (layers, heads, key/value groups, architecture) and, where
importance is measured, the corpus (an upper bound on its training split's blocks, as ``data/checks.py``
bounds them: a calibration set larger than that can never be met; the exact count is checked again when
the job loads the data). Call on a config whose references were made local (``with_local_files``).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from entrenar_bench.data.checks import CORPUS_TARGET, blocks_at_most
from entrenar_bench.data.corpus import BLANK_LINE, BLOCK_SIZE, read_documents
from entrenar_bench.data.splits import TEST_FRACTION, VAL_FRACTION, split_sizes
from entrenar_bench.data.tokenizer import CHAR
from entrenar_bench.errors import ConfigError
from entrenar_bench.models.layers import FROM_TEACHER
from entrenar_bench.models.model_files import model_config
from entrenar_bench.models.pruning.spec import PruneSpec, Shape
from entrenar_bench.models.pruning.sizes import target_widths



def training_blocks_at_most(data: dict) -> int | None:
    """An upper bound on the corpus's training-split blocks, None for data that is not a readable corpus."""
    if data.get("_target_") != CORPUS_TARGET:
        return None
    try:
        documents = read_documents(Path(str(data["path"])), data.get("document_separator", BLANK_LINE))
    except (OSError, ValueError, KeyError):
        return None  # the corpus checks name the problem
    most = blocks_at_most(documents, data.get("block_size", BLOCK_SIZE), data.get("tokenizer", CHAR),
                          data.get("chat_template", False))
    return split_sizes(most, data.get("val_fraction", VAL_FRACTION), data.get("test_fraction", TEST_FRACTION))[0]


def check_pruning(cfg: DictConfig) -> None:
    """A from-teacher student's ``method``, ``keep``, ``width``, ``params`` and ``calibration_blocks`` against its
    teacher and data; any other student passes untouched."""
    student = cfg.get("student")
    model = student.get("model") if isinstance(student, DictConfig) else None
    if not isinstance(model, DictConfig) or model.get("_target_") != FROM_TEACHER:
        return
    node = OmegaConf.to_container(model, resolve=True)
    spec = PruneSpec.from_settings(node.get("method"), node.get("keep"), node.get("layers"),
                                   node.get("calibration_blocks"), node.get("width"), node.get("params"))
    path = str(node["path"])
    shape = Shape.from_config(model_config(Path(path).expanduser(), f"student.model.path={path}"))
    spec.check(shape)
    if spec.params is not None and spec.layers is None:
        target_widths(shape, spec, spec.kept_count(shape))  # an unreachable target: ConfigError
    if not spec.needs_calibration():
        return
    data = OmegaConf.to_container(cfg.data, resolve=True) if isinstance(cfg.get("data"), DictConfig) else {}
    most = training_blocks_at_most(data)
    if most is not None and spec.calibration_blocks > most:
        raise ConfigError(f"student.calibration_blocks={spec.calibration_blocks} but the training split of "
                          f"{data['path']} has at most {most} blocks of {data.get('block_size', BLOCK_SIZE)} tokens")
