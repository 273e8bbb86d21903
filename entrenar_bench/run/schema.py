"""Structured-config schemas, registered in Hydra's ConfigStore under ``schema/``.

The YAML files in ``conf/`` stay the user-facing configs; each names its schema first in its
defaults list (``- /schema/distill@_here_``), so Hydra itself rejects a misspelt key or a value of
the wrong type when it composes. ``train`` has one schema, reused by the teacher's training and
the base student's (``finetune.base``).
"""

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore

from entrenar_bench.distill.settings import DistillSettings


@dataclass
class TrainSchema:
    """How long and how fast a model is optimised (the student's optimiser itself: the ``optim`` group)."""

    epochs: int = 100
    lr: float = 3.0e-3
    weight_decay: float = 0.0
    augment_shift: int = 0  # random +-N position shift per sample (image/signal data); 0 = none
    checkpoint_every: Optional[int] = None  # epochs between mid-run checkpoints (resumable runs); None = off
    keep_checkpoints: bool = False  # keep them in the run directory after the run completes


@dataclass
class StudentTrainSchema(TrainSchema):
    """The student's ``train``: a budget in tokens instead of epochs, and a held-out curve against tokens
    (``training/budget.py``). Only the student's: the teacher's and base student's ``train`` keep the plain
    schema, so their cache keys do not change."""

    tokens: Optional[int] = None  # target tokens to train on; set, it decides the length and train.epochs is unused
    eval_every_tokens: Optional[int] = None  # held-out metric on eval_rows validation rows every N tokens; None = off
    eval_rows: int = 64  # the fixed evaluation subset: the first eval_rows validation rows


@dataclass
class TeacherSchema:
    name: str = "teacher"
    seed: int = 0
    model: Any = None  # a `_target_` node (built) or a pretrained model to load
    train: TrainSchema = field(default_factory=TrainSchema)


@dataclass
class BaseStudentSchema(TrainSchema):
    """The pre-trained base student that ``finetune: full | lora`` start from: trained once, cached."""

    seed: int = 0
    name: Optional[str] = None  # with model: a base student other than the run's student (null: the student)
    model: Any = None


@dataclass
class FinetuneSchema:
    method: str = "none"  # none | full | lora
    r: Optional[int] = None  # LoRA rank and scale (lora.yaml sets them)
    alpha: Optional[float] = None
    dropout: float = 0.0
    target_modules: Optional[List[str]] = None
    epochs: Optional[int] = None  # epochs of a fine-tuning run (null: train.epochs)
    lr: Optional[float] = None  # its learning rate (null: train.lr)
    base: BaseStudentSchema = field(default_factory=BaseStudentSchema)


@dataclass
class OptimSchema:
    """The student's optimiser (a partial ``_target_``) and schedule (``entrenar_bench/distill/optim.py``)."""

    name: str = "adam"
    optimizer: Any = None
    scheduler: str = "cosine_epoch"  # cosine_epoch | cosine | linear | constant
    warmup_steps: int = 0  # per-step schedules only
    weight_decay: Optional[float] = None  # null: train.weight_decay


@dataclass
class BasicLauncherSchema:
    name: str = "basic"


@dataclass
class JoblibLauncherSchema:
    name: str = "joblib"
    n_jobs: Optional[int] = None
    jobs_per_gpu: int = 1


@dataclass
class RayLauncherSchema:
    name: str = "ray"
    address: Optional[str] = None
    num_cpus: int = 1
    jobs_per_gpu: int = 1


@dataclass
class SubmititLocalLauncherSchema:
    name: str = "submitit_local"
    cpus_per_task: int = 1
    timeout_min: int = 60


@dataclass
class SubmititSlurmLauncherSchema:
    name: str = "submitit_slurm"
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    gpus_per_node: Optional[int] = None
    tasks_per_node: int = 1  # = trainer.devices for one run on several devices (SLURM starts the processes)
    cpus_per_task: int = 1
    mem_gb: int = 2  # Hydra's submitit launcher takes whole GB
    timeout_min: int = 60
    max_num_timeout: int = 3  # requeues after reaching the time limit (pre-emptions requeue without limit)
    array_parallelism: int = 256


SCHEMAS = {
    "distill": DistillSettings,
    "train": StudentTrainSchema,
    "teacher": TeacherSchema,
    "finetune": FinetuneSchema,
    "optim": OptimSchema,
    "launcher/basic": BasicLauncherSchema,
    "launcher/joblib": JoblibLauncherSchema,
    "launcher/ray": RayLauncherSchema,
    "launcher/submitit_local": SubmititLocalLauncherSchema,
    "launcher/submitit_slurm": SubmititSlurmLauncherSchema,
}


def register() -> None:
    """Store every schema as ``schema/<name>`` (idempotent: storing again replaces)."""
    store = ConfigStore.instance()
    for name, node in SCHEMAS.items():
        group, _, option = f"schema/{name}".rpartition("/")
        store.store(group=group, name=option, node=node)


register()
