"""Checks before launch that the pretrained models a config names can be loaded, and that teacher,
student and data share one vocabulary. Each failure is one line (ConfigError, exit 2).

Read cheaply: ``config.json`` and tokenizer files, never weights. Call :func:`check_pretrained_models`
on a config whose references were made local (models/references.py ``with_local_files``).

One vocabulary: a model with a tokenizer of its own is used only with that same tokenizer (the same
token -> id map) as ``data.tokenizer``; a model without one only with data whose ids it covers. A model
may have more embedding rows than its tokenizer has tokens (rows padded to a multiple, never targets)
but never fewer. Character ids (``data.tokenizer=char``) or a synthetic source's ids fed to a model with
a real tokenizer are refused: they would mean other tokens to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from entrenar_bench.errors import ConfigError
from entrenar_bench.models.model_files import has_tokenizer, model_config, tokenizer_vocabulary, vocabulary_rows
from entrenar_bench.models.pretrained import is_pretrained
from entrenar_bench.models.references import CHAR


@dataclass(frozen=True)
class Vocabulary:
    """``label`` names it in messages; ``tokens``: token -> id (None: ids without a tokenizer);
    ``size``: its number of ids (None: unknown, an unreadable corpus); ``rows``: a model's embeddings."""

    label: str
    tokens: dict[str, int] | None
    size: int | None
    rows: int | None = None

    def describe(self) -> str:
        if self.rows is None:
            return f"{self.label} has {self.size if self.size is not None else 'an unknown number of'} tokens"
        tokenizer = f"tokenizer {self.size}" if self.tokens is not None else "no tokenizer"
        return f"{self.label}'s vocabulary has {self.rows} ({tokenizer})"


def pretrained_models(cfg: DictConfig) -> list[tuple[str, str]]:
    """(label, config key of its path) of each model of ``cfg`` loaded from a checkpoint."""
    nodes = [("teacher", "teacher", cfg.get("teacher")), ("student", "student", cfg.get("student"))]
    finetune = cfg.get("finetune")
    if finetune is not None and finetune.method != "none" and finetune.base.get("model") is not None:
        nodes.append(("base student", "finetune.base", finetune.base))
    return [(f"the {role} {node.get('name') or ''}".rstrip(), f"{key}.model.path")
            for role, key, node in nodes if node is not None and is_pretrained(node.get("model"))]


def model_vocabulary(cfg: DictConfig, label: str, key: str) -> Vocabulary:
    path = str(OmegaConf.select(cfg, key))
    directory = Path(path).expanduser()
    config = model_config(directory, f"{key}={path}")
    tokens = tokenizer_vocabulary(directory, f"{key}={path}") if has_tokenizer(directory) else None
    return Vocabulary(label, tokens, len(tokens) if tokens is not None else None, vocabulary_rows(config))


def _char_size(data: DictConfig) -> int | None:
    """Ids of the char tokenizer over the corpus (read only to word a refusal), None if unreadable."""
    try:
        from entrenar_bench.data.corpus import BLANK_LINE, PAIR_SEPARATOR, document_texts, read_documents
        from entrenar_bench.data.tokenizer import load_tokenizer

        documents = read_documents(Path(str(data.path)), data.get("document_separator", BLANK_LINE))
        return len(load_tokenizer(CHAR, document_texts(documents, data.get("pair_separator", PAIR_SEPARATOR))))
    except (OSError, ValueError, KeyError):
        return None


def data_vocabulary(data: DictConfig | None) -> Vocabulary | None:
    """The data's vocabulary: its tokenizer's, the char tokenizer's, a synthetic source's ids, or None
    (not token data)."""
    if not isinstance(data, DictConfig):
        return None
    if "tokenizer" in data:
        value = str(data.tokenizer)
        if value == CHAR:
            return Vocabulary(f"data.tokenizer={CHAR}", None, _char_size(data))
        directory = Path(value).expanduser()
        if not directory.is_dir():
            raise ConfigError(f"data.tokenizer={value}: no such directory ({CHAR}, or a directory with a tokenizer)")
        tokens = tokenizer_vocabulary(directory, f"data.tokenizer={value}")
        return Vocabulary(f"data.tokenizer={value}", tokens, len(tokens))
    if "vocab_size" in data:
        name = str(data.get("_target_", "data")).rsplit(".", 1)[-1]
        return Vocabulary(f"data {name} (data.vocab_size, no tokenizer)", None, int(data.vocab_size))
    return None


def _mismatch(data: Vocabulary, model: Vocabulary) -> str | None:
    """Why ``data`` and ``model`` are not one vocabulary, or None."""
    if model.tokens is not None:
        if data.tokens == model.tokens:
            return None
        detail = ""
        if data.tokens is not None and len(data.tokens) == len(model.tokens):
            differ = sum(model.tokens.get(t) != i for t, i in data.tokens.items())
            detail = f"; {differ} tokens have other ids"
        return f"{data.describe()} but {model.describe()}{detail}"
    if model.rows is not None and data.size is not None and data.size > model.rows:
        return f"{data.describe()} but {model.describe()}: ids past its embeddings"
    return None


def check_logit_widths(found: dict[str, Vocabulary], data: Vocabulary | None) -> None:
    """A student built for the data predicts the data's tokens: a teacher wider than that reads another vocabulary
    (two pretrained models of different widths over one tokenizer are padded vocabularies, compared over the ids
    they share: ``run/padded_vocab.py``)."""
    teacher, student = found.get("teacher.model.path"), found.get("student.model.path")
    if teacher is None or teacher.rows is None:
        return
    if student is None and data is not None and data.size is not None and data.size < teacher.rows:
        raise ConfigError(f"{data.describe()} but {teacher.describe()}: a student built for the data "
                          f"predicts {data.size} tokens, the teacher {teacher.rows}; give the teacher's tokenizer "
                          "(data.tokenizer=teacher) or a student made from the teacher (student=from_teacher)")


def check_pretrained_models(cfg: DictConfig) -> None:
    """Every pretrained model's directory loadable (models/model_files.py), its embeddings covering its own
    tokenizer, and its vocabulary the data's; teacher and student logits as wide. Else ConfigError (one line
    naming both vocabularies)."""
    keys = pretrained_models(cfg)
    models = [model_vocabulary(cfg, label, key) for label, key in keys]
    for model in models:
        if model.rows is not None and model.size is not None and model.rows < model.size:
            raise ConfigError(f"{model.label} has {model.rows} token embeddings, fewer than its tokenizer's "
                              f"{model.size} tokens")
    data = data_vocabulary(cfg.get("data")) if models else None  # read only where a pretrained model needs it
    for model in models if data is not None else ():
        problem = _mismatch(data, model)
        if problem:
            raise ConfigError(f"{problem}; teacher, student and data must share one vocabulary "
                              f"(data.tokenizer defaults to a pretrained teacher's)")
    check_logit_widths({key: model for (_, key), model in zip(keys, models)}, data)
