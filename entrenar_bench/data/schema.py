"""The ``data`` group's schema: the arguments the packaged data modules take, with their rules.

``data`` is a ``_target_`` group: each ``conf/data/*.yaml`` is a preset of one module's arguments, and a
user's own module takes its own, so this schema is not mounted when configs compose (it would add keys a
module does not take). It gives the rules :func:`entrenar_bench.rules.check_node` checks a data node by,
before launch; values and defaults are the presets' and the modules' own.
"""

from dataclasses import dataclass
from typing import Optional

from entrenar_bench.rules import setting


@dataclass
class DataSchema:
    batch_size: Optional[int] = setting(None, "int>=1")
    eval_batch_size: Optional[int] = setting(None, "int>=1")  # validation and test batches (null: batch_size)
    num_workers: Optional[int] = setting(None, "int>=0")
    split_seed: Optional[int] = setting(None, "int>=0")
    data_seed: Optional[int] = setting(None, "int>=0")
    num_samples: Optional[int] = setting(None, "int>=1")
    num_train: Optional[int] = setting(None, "int>=1")
    num_val: Optional[int] = setting(None, "int>=1")
    num_test: Optional[int] = setting(None, "int>=1")
    val_fraction: Optional[float] = setting(None, "fraction")
    test_fraction: Optional[float] = setting(None, "fraction")
    seq_len: Optional[int] = setting(None, "int>=2")
    block_size: Optional[int] = setting(None, "int>=2")  # a corpus's tokens per block
    vocab_size: Optional[int] = setting(None, "int>=2")
    successors: Optional[int] = setting(None, "int>=1")
    concentration: Optional[float] = setting(None, "number>0")
    train_subset: Optional[int] = setting(None, "int>=1")
    chat_template: Optional[bool] = setting(None, "bool")
