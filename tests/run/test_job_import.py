"""The job module's first import: the garbage collector paused for it, then running again, the import's objects
frozen out of later collections (run/app.py: ``training_function``)."""

import subprocess
import sys

SCRIPT = """
import gc, sys
from entrenar_bench.run.app import JOB_MODULE, training_function
assert JOB_MODULE not in sys.modules and gc.get_freeze_count() == 0
full = gc.get_stats()[2]["collections"]
train_student = training_function()
full = gc.get_stats()[2]["collections"] - full
print(train_student.__module__, gc.isenabled(), gc.get_freeze_count(), full)
assert training_function() is train_student
"""


def test_the_first_job_imports_lightning_with_the_collector_paused_then_frozen():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    module, enabled, frozen, full_collections = proc.stdout.split()
    assert module == "entrenar_bench.run.job" and enabled == "True"
    assert full_collections == "0"  # unpaused, the import runs about seven
    assert int(frozen) > 100_000  # Lightning and what it loads, out of every later collection
