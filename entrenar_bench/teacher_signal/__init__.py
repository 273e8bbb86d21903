"""The teacher's signal: its outputs stored once per teacher and data, read per batch, and the plan that says
which this run needs.

- ``sizing``: the forms (``exact``, ``top<k>``), the default k by vocabulary, bytes per position, the size
  and temperature refusals (plain Python: the checks before launch import it without torch);
- ``shards``: the on-disk format — layout, manifest, SHA-256 of each shard file, checked memory maps;
- ``reader``: one complete store's rows, read per batch;
- ``builder``: a store built (or resumed, or reduced from the exact one) under its lock;
- ``sequences``: sequence-level KD's stored teacher sequences;
- ``plan``: :class:`~entrenar_bench.teacher_signal.plan.TeacherPlan`, made once per run from the config and the
  task, handed to the size check, the memory estimate and the build.

Nothing is imported here, so that importing ``sizing`` stays light.
"""
