"""The config schemas: each key's default, type and rule (range or choices) in one place.

Mounted when configs compose (registered in Hydra's ConfigStore under ``schema/``; a YAML file names its
schema first in its defaults list, e.g. ``- /schema/distill@_here_``, and holds only the presets that
differ from it):

- ``schema/root`` (:class:`RootSchema`: seed, threads, limits, paths, ...) is stored as plain data, not as
  a typed node: the root must take the keys that ``# @package _global_`` configs add (a cost
  configuration's ``configuration``), which a typed node refuses. The checks below give its rules.
- ``train`` (the student's), ``teacher``, ``finetune``, ``optim`` and ``distill`` (``DistillSettings``) are
  typed: Hydra itself refuses a misspelt key or a value of the wrong type, ``check_schema_keys`` a ``+key``.

Not mounted, rules only: ``data`` (``data/schema.py``) and ``trainer`` (:class:`TrainerSchema`) are
``_target_`` groups whose presets are a class's arguments, any of which a user may add.

A launcher has no schema here: it is its YAML (``conf/launcher/<name>.yaml``: its knobs with their defaults,
wired into Hydra's launcher plugin, whose own schema types them), plus a placement rule where it needs one
(``run/placement.py``).

:data:`CONFIG` maps each config node to its schema; the range checks before launch are generated from it
(``rules.check_node``), as is :func:`rule_for`.
"""

from dataclasses import dataclass
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore

from entrenar_bench.data.schema import DataSchema
from entrenar_bench.distill.settings import SCHEDULERS, DistillSettings
from entrenar_bench.rules import defaults, rule_at, setting
from entrenar_bench.run.finetune import FINETUNE_METHODS


@dataclass
class LimitsSchema:
    """Checked by entrenar-bench before a sweep starts, never by a job (run-invariant)."""

    max_runs: int = setting(10000, "int>=1")  # jobs in one sweep, counted before anything is expanded
    max_teacher_store_gb: float = setting(50, "number>0")  # a larger estimated teacher store is refused
    # (exact logits: V x 4 bytes a position)
    max_memory_gb: Optional[float] = setting(None, "number>0")  # --max-memory: a run whose estimated peak memory
    # is larger is refused (run/memory_budget.py)


@dataclass
class PathsSchema:
    root_dir: str = "${oc.env:ENTRENAR_BENCH_HOME,.}"
    output_dir: str = "${paths.root_dir}/outputs"
    cache_dir: str = "${paths.output_dir}/cache"  # teachers (and base students), shared by every sweep


@dataclass
class RootSchema:
    """The root's own keys (the groups are their own schemas')."""

    seed: int = setting(0, "int>=0")  # the student's seed (initialisation, batch order); the teacher has its own
    threads: Optional[int] = setting(1, "int>=1")  # torch CPU threads per job (1 is fastest for these small
    # models); null = torch's default
    save_student: bool = setting(True, "bool")  # write the trained student to <run dir>/student (export)
    ablate: str = "full"  # components switched off: full, or e.g. temperature+attention_loss (run/ablation.py)
    task_name: str = "run"  # outputs/<task_name>/<timestamp>/; each bench sets its own
    limits: LimitsSchema = setting(factory=LimitsSchema)
    paths: PathsSchema = setting(factory=PathsSchema)


@dataclass
class TrainSchema:
    """How long and how fast a model is optimised (the student's optimiser itself: the ``optim`` group)."""

    epochs: int = setting(100, "int>=1")
    lr: float = setting(3.0e-3, "number>0")
    weight_decay: float = setting(0.0, "number>=0")
    augment_shift: int = setting(0, "int>=0")  # random +-N position shift per sample (image/signal data); 0 = none
    checkpoint_every: Optional[int] = setting(None, "int>=1")  # epochs between mid-run checkpoints; None = off
    keep_checkpoints: bool = setting(False, "bool")  # keep them in the run directory after the run completes


@dataclass
class ModelTrainSchema(TrainSchema):
    """A teacher's or base student's ``train``: 0 epochs keeps a pretrained model as it is."""

    epochs: int = setting(TrainSchema.epochs, "int>=0")


@dataclass
class StudentTrainSchema(TrainSchema):
    """The student's ``train``: a budget in tokens instead of epochs, and a held-out curve against tokens
    (``training/budget.py``). Only the student's: the teacher's and base student's ``train`` keep the plain
    schema, so their cache keys do not change."""

    tokens: Optional[int] = setting(None, "int>=1")  # target tokens; set, it decides the length (epochs unused)
    eval_every_tokens: Optional[int] = setting(None, "int>=1")  # held-out metric on eval_rows every N tokens
    eval_rows: int = setting(64, "int>=1")  # the fixed evaluation subset: the first eval_rows validation rows


@dataclass
class TeacherSchema:
    name: str = "teacher"
    seed: int = setting(0, "int>=0")
    model: Any = None  # a `_target_` node (built) or a pretrained model to load
    train: ModelTrainSchema = setting(factory=ModelTrainSchema)


@dataclass
class BaseStudentSchema(ModelTrainSchema):
    """The pre-trained base student that ``finetune: full | lora`` start from: trained once, cached."""

    seed: int = setting(0, "int>=0")
    name: Optional[str] = None  # with model: a base student other than the run's student (null: the student)
    model: Any = None


@dataclass
class FinetuneSchema:
    method: str = setting("none", FINETUNE_METHODS)
    r: Optional[int] = setting(None, "int>=1")  # LoRA rank and scale (lora.yaml sets them)
    alpha: Optional[float] = setting(None, "number>0")
    dropout: float = 0.0
    target_modules: Optional[List[str]] = None  # null: every nn.Linear and nn.Conv of the student
    epochs: Optional[int] = setting(None, "int>=1")  # epochs of a fine-tuning run (null: train.epochs)
    lr: Optional[float] = setting(None, "number>0")  # its learning rate (null: train.lr)
    base: BaseStudentSchema = setting(factory=BaseStudentSchema)


def _adam() -> dict:
    return {"_target_": "torch.optim.Adam", "_partial_": True}


@dataclass
class OptimSchema:
    """The student's optimiser (a partial ``_target_``) and schedule (``entrenar_bench/distill/optim.py``)."""

    name: str = "adam"
    optimizer: Any = setting(factory=_adam)
    scheduler: str = setting("cosine_epoch", SCHEDULERS)  # per epoch; the others per step, with warm-up
    warmup_steps: int = setting(0, "int>=0")  # per-step schedules only
    weight_decay: Optional[float] = setting(None, "number>=0")  # null: train.weight_decay


ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")
PRECISIONS = ("64", "64-true", "32", "32-true", "16", "16-mixed", "16-true", "bf16", "bf16-mixed", "bf16-true",
              "transformer-engine", "transformer-engine-float16")


@dataclass
class TrainerSchema:
    """Rules for Lightning Trainer arguments (``conf/trainer/cpu.yaml`` is the preset; any argument may be
    added)."""

    accelerator: Optional[str] = setting(None, ACCELERATORS)
    precision: Optional[str] = setting(None, PRECISIONS)
    gradient_clip_val: Optional[float] = setting(None, "number>=0")
    accumulate_grad_batches: Optional[int] = setting(None, "int>=1")
    log_every_n_steps: Optional[int] = setting(None, "int>=1")
    num_sanity_val_steps: Optional[int] = setting(None, "int>=-1")


@dataclass
class ConfigSchema(RootSchema):
    """A composed config: the root's keys and each group's schema (what the checks walk). ``bench`` and
    ``cost_config`` options are ``# @package _global_`` deltas over it; the one key they add is a cost
    configuration's ``configuration`` (never mounted: only its runs carry it, so other configs hash as before)."""

    configuration: Optional[str] = None  # conf/cost_config/<option>.yaml (generated): the name its runs group by

    data: DataSchema = setting(factory=DataSchema)
    train: StudentTrainSchema = setting(factory=StudentTrainSchema)
    teacher: TeacherSchema = setting(factory=TeacherSchema)
    distill: DistillSettings = setting(factory=DistillSettings)
    finetune: FinetuneSchema = setting(factory=FinetuneSchema)
    optim: OptimSchema = setting(factory=OptimSchema)
    trainer: TrainerSchema = setting(factory=TrainerSchema)


CONFIG = ConfigSchema

MOUNTED = {
    "distill": DistillSettings,
    "train": StudentTrainSchema,
    "teacher": TeacherSchema,
    "finetune": FinetuneSchema,
    "optim": OptimSchema,
}


def rule_for(key: str):
    """The rule a dotted key's value is checked by (``distill.temperature`` -> ``number>0``); None if none."""
    return rule_at(CONFIG, key)


def register() -> None:
    """Store every schema as ``schema/<name>`` (idempotent: storing again replaces); the root as plain data."""
    store = ConfigStore.instance()
    store.store(group="schema", name="root", node=defaults(RootSchema))
    for name, node in MOUNTED.items():
        group, _, option = f"schema/{name}".rpartition("/")
        store.store(group=group, name=option, node=node)


register()
