"""The environment record of a bundle: Python, platform, installed package versions, devices.

It describes the machine that made the bundle; each run's own device is in its ``result.json``.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any


def tool_version() -> str:
    try:
        return metadata.version("entrenar-bench")
    except metadata.PackageNotFoundError:
        return "unknown"


def packages() -> dict[str, str]:
    """Every installed distribution and its version, sorted by name (what ``pip freeze`` lists)."""
    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[name] = dist.version
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def devices() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    return {
        "torch": torch.__version__,
        "cuda_available": cuda,
        "cuda_version": torch.version.cuda,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def environment() -> dict[str, Any]:
    return {
        "tool": {"name": "entrenar-bench", "version": tool_version()},
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "platform": platform.platform(),
        "device": devices(),
        "packages": packages(),
    }
