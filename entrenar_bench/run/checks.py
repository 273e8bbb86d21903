"""Checks on a composed config, run before anything trains. Each failure is one line."""

from __future__ import annotations

import dataclasses
import math
from numbers import Real
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from entrenar_bench.data.checks import check_corpus_inputs
from entrenar_bench.distill import feature_terms, logit_terms
from entrenar_bench.distill.settings import DECODINGS, SCHEDULERS, TEACHER_OUTPUTS, TOP_K_TAILS
from entrenar_bench.errors import ConfigError
from entrenar_bench.run.ablation import FULL, parse_ablate
from entrenar_bench.run.finetune import FINETUNE_METHODS
from entrenar_bench.models.layers import FROM_TEACHER
from entrenar_bench.models.pruning.checks import check_pruning
from entrenar_bench.models.references import with_local_files
from entrenar_bench.models.structure import check_structure
from entrenar_bench.models.vocabulary import check_pretrained_models, data_vocabulary
from entrenar_bench.run.placement import check_devices, device_count, wants_gpu
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


def check_value(node: Any, path: str, rule: str | tuple[str, ...]) -> None:
    """ConfigError unless ``node`` obeys ``rule``: ``int>=N``, ``number>0``, ``number>=0``, ``unit`` (0 to 1
    inclusive), ``fraction`` (strictly between 0 and 1), ``bool``, or a tuple of the allowed values."""
    if isinstance(rule, tuple):
        if node not in rule:
            raise ConfigError(f"{path} must be one of {', '.join(rule)}, got {node!r}")
        return
    if rule == "bool":
        if not isinstance(node, bool):
            raise ConfigError(f"{path} must be true or false, got {node!r}")
        return
    if rule.startswith("int"):
        if isinstance(node, bool) or not isinstance(node, int):
            raise ConfigError(f"{path} must be an integer, got {node!r}")
        if node < int(rule[5:]):
            raise ConfigError(f"{path} must be >= {rule[5:]}, got {node}")
        return
    if isinstance(node, bool) or not isinstance(node, Real):
        raise ConfigError(f"{path} must be a number, got {node!r}")
    if (rule == "number>0" and not node > 0) or (rule == "number>=0" and not node >= 0) or \
            (rule == "fraction" and not 0 < node < 1) or (rule == "unit" and not 0 <= node <= 1) or \
            (rule == "top_p" and not 0 < node <= 1):
        raise ConfigError(f"{path} must be {RULE_WORDS[rule]}, got {node!r}")


RULE_WORDS = {"number>0": "> 0", "number>=0": ">= 0", "fraction": "between 0 and 1 (exclusive)",
              "unit": "between 0 and 1", "top_p": "in (0, 1]"}


DATA_RULES = {"batch_size": "int>=1", "num_workers": "int>=0", "split_seed": "int>=0", "data_seed": "int>=0",
              "num_samples": "int>=1", "num_train": "int>=1", "num_val": "int>=1", "num_test": "int>=1",
              "seq_len": "int>=2", "block_size": "int>=2", "vocab_size": "int>=2", "successors": "int>=1",
              "train_subset": "int>=1", "concentration": "number>0"}
ROOT_RULES = {"seed": "int>=0", "threads": "int>=1"}
TRAIN_RULES = {"epochs": "int>=1", "lr": "number>0", "weight_decay": "number>=0", "augment_shift": "int>=0",
               "seed": "int>=0", "checkpoint_every": "int>=1", "keep_checkpoints": "bool",
               "tokens": "int>=1", "eval_every_tokens": "int>=1", "eval_rows": "int>=1"}
DISTILL_RULES = {"temperature": "number>0", "alpha": "unit", "temperature_scaling": "bool",
                 "layer_weight": "number>=0", "attention_weight": "number>=0", "beta": "unit", "skew_lambda": "unit",
                 "teacher_outputs": TEACHER_OUTPUTS, "teacher_top_k": "int>=0", "top_k_tail": TOP_K_TAILS,
                 "on_policy": "unit", "seq_kd": "bool", "seq_kd_decoding": DECODINGS, "seq_kd_beams": "int>=1",
                 "prompt_tokens": "int>=1", "new_tokens": "int>=0", "sample_temperature": "number>0",
                 "sample_top_p": "top_p", "loss_chunk_tokens": "int>=0", "gold_matched_weight": "number>=0",
                 "gold_unmatched_weight": "number>=0", "max_unshared_mass": "unit"}
FINETUNE_RULES = {"method": FINETUNE_METHODS, "epochs": "int>=1", "lr": "number>0"}
LORA_RULES = {"r": "int>=1", "alpha": "number>0"}
OPTIM_RULES = {"scheduler": SCHEDULERS, "warmup_steps": "int>=0", "weight_decay": "number>=0"}
LIMITS_RULES = {"max_runs": "int>=1", "max_teacher_store_gb": "number>0", "max_memory_gb": "number>0"}
PRETRAINED_RULES = {**TRAIN_RULES, "epochs": "int>=0"}  # a teacher or base student: 0 keeps a pretrained one
TRAINER_RULES = {"gradient_clip_val": "number>=0", "accumulate_grad_batches": "int>=1",
                 "log_every_n_steps": "int>=1", "num_sanity_val_steps": "int>=-1"}
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")
PRECISIONS = ("64", "64-true", "32", "32-true", "16", "16-mixed", "16-true", "bf16", "bf16-mixed", "bf16-true",
              "transformer-engine", "transformer-engine-float16")


def _apply(node: Any, prefix: str, rules: dict[str, str]) -> None:
    """Check each key of ``node`` that ``rules`` names (a null value is left to the code's default)."""
    if not isinstance(node, DictConfig):
        return
    for key, rule in rules.items():
        if key in node and node[key] is not None:
            check_value(node[key], f"{prefix}{key}", rule)
    if rules is DATA_RULES:
        fractions = [k for k in node.keys() if str(k).endswith("_fraction") and node[k] is not None]
        for key in fractions:
            check_value(node[key], f"{prefix}{key}", "fraction")
        if fractions and sum(node[k] for k in fractions) >= 1:
            raise ConfigError(f"{' + '.join(prefix + str(k) for k in fractions)} must be below 1 "
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
    _apply(trainer, "trainer.", TRAINER_RULES)
    accelerator = trainer.get("accelerator", "cpu")
    if isinstance(accelerator, str) and accelerator not in ACCELERATORS:
        raise ConfigError(f"trainer.accelerator must be one of {', '.join(ACCELERATORS)}, got {accelerator!r}")
    if "precision" in trainer and str(trainer.precision) not in PRECISIONS:
        raise ConfigError(f"trainer.precision must be one of {', '.join(PRECISIONS)}, got {trainer.precision!r}")
    devices = trainer.get("devices", 1)
    if isinstance(devices, bool) or (isinstance(devices, int) and devices < 1 and devices != -1) or \
            (isinstance(devices, ListConfig) and not len(devices)):
        raise ConfigError(f"trainer.devices must be a number of devices (>= 1, or -1 for all), auto, or a list "
                          f"of device indices, got {devices!r}")
    launcher = cfg.get("launcher") or {}
    remote = launcher.get("name") == "submitit_slurm" or (launcher.get("name") == "ray" and launcher.get("address"))
    if not wants_gpu(accelerator) or remote:
        return
    import torch  # only for a GPU trainer: the command line starts without torch

    if not torch.cuda.is_available():
        raise ConfigError(f"trainer.accelerator={accelerator} needs a CUDA GPU and this machine has none visible "
                          f"(torch {torch.__version__}); use trainer=cpu")
    wanted = device_count(trainer.get("devices", 1))
    if wanted and wanted > torch.cuda.device_count():
        raise ConfigError(f"trainer.devices={wanted} but this machine has {torch.cuda.device_count()} CUDA GPU(s)")


NODE_RULES = (("data", DATA_RULES), ("train", TRAIN_RULES), ("distill", DISTILL_RULES), ("optim", OPTIM_RULES),
              ("teacher", {"seed": "int>=0"}), ("teacher.train", PRETRAINED_RULES), ("finetune", FINETUNE_RULES),
              ("finetune.base", PRETRAINED_RULES), ("limits", LIMITS_RULES))  # (config node, its rule table)


def rule_for(key: str) -> str | tuple[str, ...] | None:
    """The rule a dotted key's value is checked by (``distill.temperature`` -> ``number>0``); None if it has none."""
    node, _, name = key.rpartition(".")
    return next((rules.get(name) for prefix, rules in NODE_RULES if prefix == node), None)


def check_settings(cfg: DictConfig) -> None:
    """Per-key checks (one rule table per node: data, train — the student's, the teacher's, the base student's —,
    distill, optim, finetune, trainer) and finite numbers everywhere, so a bad value stops a sweep before its
    first job."""
    check_finite(cfg)
    _apply(cfg, "", ROOT_RULES)
    for prefix, rules in NODE_RULES:
        _apply(OmegaConf.select(cfg, prefix), f"{prefix}.", rules)
    if OmegaConf.select(cfg, "finetune.method") == "lora":
        _apply(cfg.finetune, "finetune.", LORA_RULES)
    check_logit_loss(cfg)
    check_terms(cfg)
    check_generation(cfg)
    if OmegaConf.select(cfg, "optim.scheduler") == "cosine_epoch" and OmegaConf.select(cfg, "optim.warmup_steps"):
        raise ConfigError("optim.warmup_steps needs a per-step schedule (optim.scheduler=cosine, linear or constant); "
                          "cosine_epoch steps once an epoch")
    check_trainer(cfg)
