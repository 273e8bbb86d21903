"""The Hydra child's lifeline: started by a wrapper that is already gone, it stops at once; it only ever
stops its own process group (never the shell's or a test runner's)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from entrenar_bench.run.lifeline import PARENT_ENV


@pytest.mark.parametrize("own_session", [True, False])
def test_a_child_whose_wrapper_is_gone_stops_at_once_and_only_its_group(own_session):
    env = {**os.environ, PARENT_ENV: "1"}  # not its parent: the wrapper "died" before the child asked for a signal
    child = subprocess.run([sys.executable, "-m", "entrenar_bench.run", "--help"], env=env, capture_output=True,
                           text=True, timeout=120, start_new_session=own_session)
    assert child.returncode == 143 and child.stdout == ""  # stopped before Hydra did anything
    # this test process, in the caller's group when own_session is False, is still here to assert this


def test_without_a_wrapper_the_app_is_left_as_it_is():
    env = {k: v for k, v in os.environ.items() if k != PARENT_ENV}
    child = subprocess.run([sys.executable, "-m", "entrenar_bench.run", "--help"], env=env, capture_output=True,
                           text=True, timeout=120)
    assert child.returncode == 0 and "Powered by Hydra" in child.stdout
