"""One job -> one ``result.json``: the Hydra app, the job, the record, checks, placement, memory.

``python -m entrenar_bench.run`` runs the app (``entrenar_bench.run.app``).
"""
