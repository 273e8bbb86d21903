"""The column names of the held-out curve in ``metrics.csv`` (``training/heldout.py``), kept apart so that
aggregation reads them without loading torch or Lightning."""

TOKENS = "tokens"  # training tokens seen at the point
PREFIX = "heldout/"  # heldout/<metric>: the metric on the fixed evaluation subset
