"""The model cache: teachers and pre-trained base students, each trained once and stored on disk.

A cached model is named by what it is (``teachers/<key>/teacher.pt``, ``base_students/<key>/student.pt``,
with a ``.json`` of its measured metrics beside it); a model used as it is (``train.epochs: 0``, e.g. a
pretrained one loaded from its directory) keeps only the ``.json``: it is loaded from where it is every time,
never copied per data config, and its key covers the digest of its files. Key: SHA-256 of the resolved model spec (name,
seed, model, training settings) and data config, less the data keys a cached model does not depend on
(``teacher_free_keys`` of the data module, e.g. a language model's ``train_subset``), plus the digests of the files
the data is made of (``content_keys``: a corpus, a tokenizer directory; edited in place, they train anew). A file lock
makes parallel jobs that need the same model train it once; the others wait and load it.

Both train on the data module's ``pretrain_dataloader()`` (for a language model the whole training split,
of which the student distils on a small subset: a base student is pre-trained like one, then fine-tuned),
with cross-entropy alone, through the run's task, with the default optimisation (Adam, per-epoch cosine:
the ``optim`` group is the student's, and not part of a cached model's key). ``train.epochs: 0`` keeps a
pretrained model as it is (only measured; the log says so).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from filelock import FileLock
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from entrenar_bench.distill.module import DistillationModule
from entrenar_bench.distill.objective import DistillationObjective
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.files import config_hash, content_digest, content_digests, write_atomic, write_json_atomic
from entrenar_bench.models.pruning.calibration import calibration_kwargs
from entrenar_bench.tasks import Task
from entrenar_bench.training.distributed import one_device
from entrenar_bench.training.loop import fit_and_evaluate

log = logging.getLogger(__name__)

CE_ONLY = DistillSettings(name="none", logit_loss="none", alpha=0.0)


@dataclass(frozen=True)
class CachedModelKind:
    """Where a kind of cached model lives and what its files are called."""

    folder: str  # under the cache directory
    stem: str  # <stem>.pt, <stem>.json, <stem>.lock
    label: str  # for the log

    def lock(self, directory: Path) -> FileLock:
        return FileLock(str(directory / f"{self.stem}.lock"))


TEACHER = CachedModelKind("teachers", "teacher", "teacher")
BASE_STUDENT = CachedModelKind("base_students", "student", "base student")


def model_files(model: dict[str, Any]) -> dict[str, str]:
    """``{path: content digest}`` of the model files a model spec loads (its ``path``, when it exists): a model
    on disk is what its files hold, so replacing them makes a new cached model."""
    path = model.get("path") if isinstance(model, dict) else None
    return {path: content_digest(path)} if isinstance(path, str) and Path(path).exists() else {}


def model_key(spec: DictConfig, data_cfg: DictConfig, ignored: tuple[str, ...] = (),
              content_keys: tuple[str, ...] = ()) -> str:
    """Each node resolved where it sits, so interpolations into the rest of the config (``${paths...}``) work;
    the ``ignored`` data keys left out; a model loaded from disk by the digest of its files too, and the data by
    the digests of the files its ``content_keys`` name."""
    data = OmegaConf.to_container(data_cfg, resolve=True)
    model = OmegaConf.to_container(spec, resolve=True)
    plain = {"model": model, "data": {k: v for k, v in data.items() if k not in ignored}}
    files = model_files(model.get("model"))
    if files:
        plain["files"] = files
    contents = content_digests(data, content_keys)
    if contents:
        plain["contents"] = contents
    return config_hash(plain)[:16]


def used_as_it_is(spec: DictConfig) -> bool:
    """A model that trains no epoch is its spec's model (e.g. a pretrained one): measured, never copied."""
    return spec.train.epochs == 0


def build_model(model_cfg: DictConfig, datamodule: Any) -> nn.Module:
    """The model of ``model_cfg`` (``_target_``) built with its data module's ``model_kwargs()`` (and its
    calibration blocks where the node takes them: models/pruning/calibration.py)."""
    return instantiate(model_cfg, **datamodule.model_kwargs(), **calibration_kwargs(model_cfg, datamodule))


def cross_entropy_module(model: nn.Module, task: Task, train: DictConfig) -> L.LightningModule:
    """``model`` trained with cross-entropy alone, through its task."""
    return DistillationModule(task, model, DistillationObjective(CE_ONLY), lr=train.lr, weight_decay=train.weight_decay,
                              augment=task.augmentation(train.augment_shift))


def _train(kind: CachedModelKind, spec: DictConfig, cfg: DictConfig, task: Task, directory: Path) -> None:
    """Train ``spec`` (name, seed, model, train) with cross-entropy alone; store weights and metrics."""
    L.seed_everything(spec.seed, workers=True, verbose=False)
    datamodule = task.datamodule
    model = build_model(spec.model, datamodule)
    module = cross_entropy_module(model, task, spec.train)
    doing = "training" if spec.train.epochs > 0 else "measuring (used as it is)"
    log.info("%s %s %s (cached at %s)", doing, kind.label, spec.name, directory)
    start = time.perf_counter()
    result = fit_and_evaluate(module, datamodule, one_device(cfg.trainer), spec.train.epochs,
                              datamodule.pretrain_dataloader())
    measured_s = time.perf_counter() - start  # training (none for a model used as it is) and measuring
    if not used_as_it_is(spec):
        write_atomic(directory / f"{kind.stem}.pt", lambda f: torch.save(model.state_dict(), f))
    write_json_atomic(
        directory / f"{kind.stem}.json",
        {"metrics": result.metrics, "time_s": result.time_s, "measured_s": measured_s, "device": result.device,
         "config": OmegaConf.to_container(spec, resolve=True)},
    )
    log.info("%s test accuracy %.4f (%.1f s)", kind.label, result.metrics["accuracy"], measured_s)


def cache_directory(kind: CachedModelKind, spec: DictConfig, cfg: DictConfig, task: Task) -> Path:
    """Where the cached model of ``spec`` for this run's data lives (whether or not it is there yet)."""
    datamodule = task.datamodule
    key = model_key(spec, cfg.data, tuple(datamodule.teacher_free_keys), tuple(getattr(datamodule, "content_keys", ())))
    return Path(cfg.paths.cache_dir).resolve() / kind.folder / key


def cached_teacher_metrics(cfg: DictConfig, task: Task) -> dict[str, Any] | None:
    """The test metrics of this config's teacher where it is cached already (nothing trained or loaded), else
    None: what a run without a teacher measures its recovery against."""
    record = cache_directory(TEACHER, cfg.teacher, cfg, task) / f"{TEACHER.stem}.json"
    return cached_metrics(TEACHER, record.parent)["metrics"] if record.exists() else None


def cached_model(kind: CachedModelKind, spec: DictConfig, cfg: DictConfig, task: Task) -> tuple[nn.Module, Path]:
    """The model of ``spec`` for this run's data, trained and cached first if needed; in train mode."""
    datamodule = task.datamodule
    directory = cache_directory(kind, spec, cfg, task)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / f"{kind.stem}.pt"
    done = directory / f"{kind.stem}.json" if used_as_it_is(spec) else weights  # as it is: only its measurement
    with kind.lock(directory):
        if not done.exists():
            _train(kind, spec, cfg, task, directory)
    model = build_model(spec.model, datamodule)
    if not used_as_it_is(spec):
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model, directory


def load_teacher(cfg: DictConfig, task: Task) -> tuple[nn.Module, Path]:
    """The frozen, eval-mode teacher of this config (``teacher``: name, seed, model, train)."""
    model, directory = cached_model(TEACHER, cfg.teacher, cfg, task)
    model.requires_grad_(False)
    return model.eval(), directory


def cached_metrics(kind: CachedModelKind, directory: Path) -> dict[str, Any]:
    """What was measured when the cached model in ``directory`` was trained."""
    import json

    return json.loads((directory / f"{kind.stem}.json").read_text())
