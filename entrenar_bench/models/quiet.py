"""Library output kept out of the logs: the progress bars transformers draws while it loads, converts (GGUF) and
saves a model, drawn again in every job. Logging banners are quieted by logger level where the logs are set up
(``conf/hydra/default.yaml``: rouge-score's "Using default tokenizer." through absl)."""

from __future__ import annotations

import os
import sys

PROGRESS_BARS = "HF_HUB_DISABLE_PROGRESS_BARS"  # read by huggingface_hub, whose switch transformers follows


def quiet_progress_bars() -> None:
    """No library progress bars in this process (a user's own ``HF_HUB_DISABLE_PROGRESS_BARS`` wins)."""
    os.environ.setdefault(PROGRESS_BARS, "1")
    if os.environ[PROGRESS_BARS] != "1" or "transformers" not in sys.modules:
        return  # transformers reads the switch when it is imported
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
