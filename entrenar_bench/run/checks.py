"""Checks on a composed config, run before anything trains. Each failure is one line."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from entrenar_bench.data.checks import check_corpus_inputs
from entrenar_bench.distill import feature_terms, logit_terms
from entrenar_bench.errors import ConfigError
from entrenar_bench.run.ablation import FULL, parse_ablate
from entrenar_bench.models.layers import FROM_TEACHER
from entrenar_bench.models.pruning.checks import check_pruning
from entrenar_bench.models.references import with_local_files
from entrenar_bench.models.structure import check_structure
from entrenar_bench.models.vocabulary import check_pretrained_models, data_vocabulary
from entrenar_bench.rules import check_node
from entrenar_bench.run.placement import check_devices, device_count, runs_elsewhere, wants_gpu
from entrenar_bench.run.schema import CONFIG
from entrenar_bench.run.tokenizations import check_tokenizations
from entrenar_bench.teacher_signal.sizing import tempered_top_k, tempers_stored_teacher
from entrenar_bench.training.logger_group import check_loggers


def check_schema_keys(node: DictConfig, path: str = "") -> None:
    """A key that its node's schema does not declare: ConfigError naming it. Hydra refuses such a key
    in ``key=value`` itself; this catches ``+key=value``, which Hydra adds even to a structured node."""
    schema = OmegaConf.get_type(node)
    known = ({f.name for f in dataclasses.fields(schema) if not f.metadata.get("omegaconf_ignore")}
             if dataclasses.is_dataclass(schema) else None)  # a field OmegaConf ignores is no key
    for key in node.keys():
        if not path and key == "hydra":  # Hydra's own node, composed with return_hydra_config
            continue
        where = f"{path}{key}"
        if known is not None and key not in known:
            raise ConfigError(f"{where}: no such setting (known: {', '.join(sorted(known))})")
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            check_schema_keys(child, f"{where}.")


def check_student_source(cfg: DictConfig) -> None:
    """``student=from_teacher`` takes its layers from a teacher loaded from a checkpoint (``teacher.model.path``)."""
    student = cfg.get("student")
    model = student.get("model") if isinstance(student, DictConfig) else None
    if (isinstance(model, DictConfig) and model.get("_target_") == FROM_TEACHER
            and OmegaConf.select(cfg, "teacher.model.path", default=None) is None):
        raise ConfigError("student=from_teacher needs a pretrained teacher (a teacher.model.path, "
                          "e.g. teacher=smollm2); "
                          f"the teacher {cfg.teacher.get('name', '')} is built from a config")


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first invalid setting."""
    check_student_source(cfg)
    check_schema_keys(cfg)
    check_settings(cfg)
    check_tokenizations(cfg)
    check_devices(cfg)
    local = with_local_files(cfg)  # references fetched and converted once; the checks then read local files only
    check_pretrained_models(local)  # first: the corpus's checks read the tokenizer the models name
    check_pruning(local)
    try:
        check_corpus_inputs(local.data)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    check_teacher_temperature(local)
    check_structure(local)
    check_loggers(cfg)
    try:
        parse_ablate(cfg.get("ablate", FULL))
    except ValueError as e:
        raise ConfigError(f"ablate: {e}") from None


def check_teacher_temperature(local: DictConfig) -> None:
    """A top-k teacher store — set, or the default above 1,024 tokens — standing in for the teacher at T ≠ 1 is
    refused before launch (``teacher_signal/sizing.py``). The config rules most runs out cheaply; where it would
    be refused, the data is set up (loading the training stack) and the run's own ``TeacherPlan`` refuses in one
    line naming ``distill.teacher_top_k=0`` and its size."""
    from entrenar_bench.run.app import distill_settings  # the ablated settings, as the job takes them

    settings = distill_settings(local)
    if not tempers_stored_teacher(settings):
        return
    vocabulary = data_vocabulary(local.get("data"))
    if not tempered_top_k(settings, vocabulary.size if vocabulary else None):
        return
    from hydra.utils import instantiate

    from entrenar_bench.run.finetune import run_training
    from entrenar_bench.tasks import task_for
    from entrenar_bench.teacher_signal.plan import TeacherPlan

    datamodule = instantiate(local.data)
    datamodule.setup("fit")
    task = task_for(datamodule)
    TeacherPlan.make(local, settings, task, task.augmentation(run_training(local).augment_shift) is not None).check()


def _walk(value: Any, path: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{path} must be a finite number, got {value}")
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        _walk(child, f"{path}.{key}" if path else str(key))


def check_finite(cfg: DictConfig) -> None:
    """Every number of the config (Hydra's own node aside), interpolations resolved, is finite: a NaN or an
    infinity anywhere is refused by name before anything runs."""
    for key in cfg.keys():
        if key == "hydra":
            continue
        try:
            node = cfg._get_node(key)
            value = (OmegaConf.to_container(node, resolve=True, throw_on_missing=False)
                     if isinstance(node, (DictConfig, ListConfig)) else cfg.get(key))
        except OmegaConfBaseException as e:
            raise ConfigError(f"{key}: {' '.join(str(e).split())[:200]}") from None
        _walk(value, str(key))


def check_fractions(data: Any) -> None:
    """The data's split fractions leave something to train on (each one's own range is the schema's)."""
    if not isinstance(data, DictConfig):
        return
    fractions = [k for k in data.keys() if str(k).endswith("_fraction") and isinstance(data[k], (int, float))]
    if fractions and sum(data[k] for k in fractions) >= 1:
        raise ConfigError(f"{' + '.join('data.' + str(k) for k in fractions)} must be below 1 "
                          "(something must be left to train on)")


def check_logit_loss(cfg: DictConfig) -> None:
    """``distill.logit_loss``: a registered term, ``none``, or a user's term that imports and takes the inputs and
    knobs a logit term takes (``distill/logit_terms.py``; importing it is the check)."""
    name = OmegaConf.select(cfg, "distill.logit_loss")
    if name is None:  # the schema makes it a string
        return
    try:
        logit_terms.check(name)
    except ValueError as e:
        raise ConfigError(f"distill.logit_loss {e}") from None


def check_terms(cfg: DictConfig) -> None:
    """The root ``terms`` node: each entry a user's feature term that imports and takes what its entry gives it
    (``distill/feature_terms.py``; importing it is the check)."""
    try:
        feature_terms.configured(cfg.get("terms"))
    except ValueError as e:
        raise ConfigError(str(e)) from None


def check_generation(cfg: DictConfig) -> None:
    """Training on sampled continuations (``distill.on_policy``, ``distill.seq_kd``) needs a strategy that takes
    it — a logit term against the teacher, no layer matching —, a plain-text prefix shorter than a row and a task
    that generates (asked of the data's task, imported only when these settings are used)."""
    d = cfg.get("distill")
    if not isinstance(d, DictConfig) or not (d.get("on_policy") or d.get("seq_kd")):
        return
    what = "distill.on_policy" if d.get("on_policy") else "distill.seq_kd"
    if d.get("on_policy") and (d.get("logit_loss") == "none" or not d.get("alpha")):
        raise ConfigError(f"distill.on_policy needs a logit term against the teacher "
                          f"(distill={d.get('name')} has none: "
                          "its generated batches would have nothing to learn from)")
    data = cfg.get("data")
    length = next((k for k in ("seq_len", "block_size") if isinstance(data, DictConfig) and data.get(k)), None)
    if length and d.get("prompt_tokens") and d.prompt_tokens >= data[length]:
        raise ConfigError(f"distill.prompt_tokens={d.prompt_tokens} leaves nothing to generate in rows of "
                          f"data.{length}={data[length]}: set it below the row length")
    if d.get("layer_weight") or d.get("attention_weight") or cfg.get("terms"):
        raise ConfigError(f"{what} works with kd (any logit_loss) and mse, not with layer matching, attention "
                          f"transfer or a user's feature terms (distill={d.get('name')})")
    from hydra.utils import get_class  # the data module's class, for its task (loads the training stack)

    from entrenar_bench.tasks import task_class

    try:
        task = task_class(get_class(cfg.data._target_).task)
    except Exception as e:  # noqa: BLE001 (any import problem is the data config's)
        raise ConfigError(f"data: cannot tell its task ({e})") from None
    if not task.generates:
        raise ConfigError(f"{what} needs a task that generates sequences; the data's task {task.name!r} does not")


def check_trainer(cfg: DictConfig) -> None:
    """Accelerator and precision by name; a GPU trainer needs a CUDA GPU where its jobs run (this machine,
    unless a SLURM or remote Ray launcher sends them elsewhere), with as many devices as it asks for."""
    trainer = cfg.get("trainer")
    if not isinstance(trainer, DictConfig):
        return
    accelerator = trainer.get("accelerator", "cpu")
    devices = trainer.get("devices", 1)
    if isinstance(devices, bool) or (isinstance(devices, int) and devices < 1 and devices != -1) or \
            (isinstance(devices, ListConfig) and not len(devices)):
        raise ConfigError(f"trainer.devices must be a number of devices (>= 1, or -1 for all), auto, or a list "
                          f"of device indices, got {devices!r}")
    if not wants_gpu(accelerator) or runs_elsewhere(cfg):
        return
    import torch  # only for a GPU trainer: the command line starts without torch

    if not torch.cuda.is_available():
        raise ConfigError(f"trainer.accelerator={accelerator} needs a CUDA GPU and this machine has none visible "
                          f"(torch {torch.__version__}); use trainer=cpu")
    wanted = device_count(trainer.get("devices", 1))
    if wanted and wanted > torch.cuda.device_count():
        raise ConfigError(f"trainer.devices={wanted} but this machine has {torch.cuda.device_count()} CUDA GPU(s)")


def check_settings(cfg: DictConfig) -> None:
    """Per-key checks, generated from the schemas' rules (``run/schema.py`` CONFIG), the rules between keys, and
    finite numbers everywhere, so a bad value stops a sweep before its first job."""
    check_finite(cfg)
    check_node(cfg, CONFIG)
    check_fractions(cfg.get("data"))
    check_logit_loss(cfg)
    check_terms(cfg)
    check_generation(cfg)
    if OmegaConf.select(cfg, "optim.scheduler") == "cosine_epoch" and OmegaConf.select(cfg, "optim.warmup_steps"):
        raise ConfigError("optim.warmup_steps needs a per-step schedule (optim.scheduler=cosine, linear or constant); "
                          "cosine_epoch steps once an epoch")
    check_trainer(cfg)
