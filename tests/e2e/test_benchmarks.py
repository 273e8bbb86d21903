"""The benchmark scripts stay runnable: each parses its options and imports what it needs."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("*.py") if p.name != "common.py"))
def test_benchmark_script_starts(script):
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), "--help"], capture_output=True, text=True,
                          cwd=BENCHMARKS, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout


def test_quick_tabulates_every_ratio_line_and_says_why_one_is_missing(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import common
    import quick

    line = common.ratio_line("overhead (compare / plain loop, median)", 1.234, "<= 1.1x", False)
    rows = quick.ratio_rows(f"[1] compare 80.0 s | plain 65.0 s\n{line}\n")
    assert rows == [{"name": "overhead (compare / plain loop, median)", "value": "1.23", "target": "<= 1.1x",
                     "verdict": "MISSED"}]
    smollm2 = quick.ratio_rows(common.ratio_line("whole process, framework / plain", 0.94, "<= 1.15", True))
    text = quick.table({"overhead": (rows, 61.0, ""), "smollm2": (smollm2, 90.0, ""),
                        "lm_cache": ([], 3.0, "not measured (exit 1): no model")})
    assert "| overhead: overhead (compare / plain loop, median) | 1.23× | <= 1.1x | MISSED | 61 s |" in text
    assert "| smollm2: whole process, framework / plain (issue 32) | 0.94× | <= 1.0x | MET | |" in text
    assert "| lm_cache | — | — | not measured (exit 1): no model | 3 s |" in text
