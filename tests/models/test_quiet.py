"""Library output stays out of the logs: transformers' progress bars (loading, converting, saving a model) once
``quiet_progress_bars`` ran, as every job and every GGUF conversion runs it, and rouge-score's banner under the
jobs' logging configuration."""

import logging
import os
import subprocess
import sys

from omegaconf import OmegaConf

SAVE_AND_LOAD = """
import sys
{quiet}
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM
{quiet}
config = LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                     num_key_value_heads=2, vocab_size=32)
LlamaForCausalLM(config).save_pretrained(sys.argv[1])
AutoModelForCausalLM.from_pretrained(sys.argv[1])
"""
QUIET = "from entrenar_bench.models.quiet import quiet_progress_bars; quiet_progress_bars()"


def _stderr(tmp_path, before: str, after: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    code = SAVE_AND_LOAD.replace("{quiet}", before, 1).replace("{quiet}", after, 1)
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m")], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_no_progress_bars_once_quieted_before_or_after_transformers_is_imported(tmp_path):
    assert "Loading weights" in _stderr(tmp_path, "", "")  # what a job's log held
    assert "Loading weights" not in _stderr(tmp_path, QUIET, "")
    assert "Loading weights" not in _stderr(tmp_path, "", QUIET)


def _banners(level: int) -> list[str]:
    """What rouge-score logs (through absl's logger) while a scorer is made, with that logger at ``level``."""
    from rouge_score.rouge_scorer import RougeScorer

    class Kept(logging.Handler):
        def __init__(self):
            super().__init__()
            self.lines = []

        def emit(self, record):
            self.lines.append(record.getMessage())

    logger, kept = logging.getLogger("absl"), Kept()
    old_level, old_disabled = logger.level, logger.disabled
    logger.addHandler(kept)
    logger.setLevel(level)
    logger.disabled = False
    try:
        RougeScorer(["rougeL"], use_stemmer=True)
    finally:
        logger.removeHandler(kept)
        logger.setLevel(old_level)
        logger.disabled = old_disabled
    return kept.lines


def test_rouge_scores_banner_stays_out_of_a_jobs_log():
    job_logging = OmegaConf.to_container(_hydra().job_logging)
    assert "Using default tokenizer." in _banners(logging.INFO)          # what a job's log held
    assert _banners(logging.getLevelName(job_logging["loggers"]["absl"]["level"])) == []


def _hydra():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from entrenar_bench.files import CONF_DIR

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("config", return_hydra_config=True).hydra
    finally:
        GlobalHydra.instance().clear()
