"""The ``entrenar-bench`` and ``entrenar`` command lines: options -> Hydra overrides -> multirun -> aggregate."""
