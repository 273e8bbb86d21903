"""Shared fixtures: a throwaway outputs/ root, fast training settings, CLI and app runners."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from entrenar_bench.files import CONF_DIR
from entrenar_bench.run import schema  # noqa: F401  (registers the config schemas for compose())

E2E = Path(__file__).resolve().parent / "e2e"

# Few epochs: tests check behaviour, not accuracy (the accuracy claims are checked by real sweeps).
FAST = ["train.epochs=2", "teacher.train.epochs=2"]
# The embedded language-model task shrunk to seconds: 256 teacher sequences of 16 tokens, 64 for the student.
LM_FAST = ["+experiment=lm", "data.num_train=256", "data.num_val=64", "data.num_test=64", "data.train_subset=64",
           "data.seq_len=16", "teacher.train.epochs=1", "train.epochs=2", "finetune.base.epochs=1"]


def pytest_collection_modifyitems(items) -> None:
    """Tests under tests/e2e/ drive the command line or the app end to end: marked ``e2e`` and ``slow``."""
    for item in items:
        if E2E in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def bench_home(tmp_path_factory) -> Path:
    """One ENTRENAR_BENCH_HOME for the session, so the fast teacher is trained once and shared."""
    home = tmp_path_factory.mktemp("bench_home")
    os.environ["ENTRENAR_BENCH_HOME"] = str(home)
    return home


@pytest.fixture
def compose_cfg(bench_home):
    """Compose the app's config with overrides, as ``python -m entrenar_bench.run`` would."""

    def _compose(*overrides: str):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=list(overrides))

    yield _compose
    GlobalHydra.instance().clear()


def _env(bench_home: Path) -> dict[str, str]:
    return {**os.environ, "ENTRENAR_BENCH_HOME": str(bench_home), "PYTHONWARNINGS": "ignore"}


@pytest.fixture
def run_app(bench_home):
    """Run ``python -m entrenar_bench.run ARGS`` in a subprocess; returns CompletedProcess."""

    def _run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "entrenar_bench.run", *args], capture_output=True, text=True,
                              env=_env(bench_home), cwd=bench_home, timeout=timeout)

    return _run


@pytest.fixture
def run_cli(bench_home):
    """Run ``entrenar-bench ARGS`` in a subprocess; returns CompletedProcess."""

    def _run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "entrenar_bench.cli.main", *args], capture_output=True,
                              text=True, env=_env(bench_home), cwd=bench_home, timeout=timeout)

    return _run


def read_results(sweep_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(sweep_dir).glob("*/result.json"))]


def outputs(home: Path) -> list[Path]:
    """The sweep and run directories under ``home/outputs`` (the shared cache left out): what a refused command
    must not add to."""
    root = home / "outputs"
    return sorted(p for p in root.glob("*/*") if p.parent.name != "cache") if root.exists() else []
