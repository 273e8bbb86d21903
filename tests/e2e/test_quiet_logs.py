"""A plain Hydra run logs each event once: no line printed twice, no logger advertisement, no `srun` hint
(even with an `srun` on the PATH, as on a SLURM login node)."""

import os
import subprocess
import sys

from conftest import FAST


def test_a_plain_run_prints_each_line_once_without_tips_or_srun_hints(bench_home, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "srun").chmod(0o755)
    env = {**os.environ, "ENTRENAR_BENCH_HOME": str(bench_home), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run([sys.executable, "-m", "entrenar_bench.run", *FAST, "teacher.seed=11",
                             f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, env=env,
                            cwd=bench_home, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line.split("] - ", 1)[-1] for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == len(set(lines)), result.stderr
    assert "training teacher" in result.stderr  # the job's own lines are still there
    for noise in ("Tip", "litlogger", "srun", "GPU available", "INFO: "):
        assert noise not in result.stderr, result.stderr
