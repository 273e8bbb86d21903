"""Generated data kept on disk: MNIST-1D at GPU scale takes ~3 s per 10k samples to generate,
too slow to repeat in every job. The arrays are generated once per (size, seed), saved as
``.npz`` under the cache directory (atomically, under a file lock so parallel jobs generate
it once) and loaded by every later job.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from filelock import FileLock

from entrenar_bench.data.arrays import MNIST1DDataModule
from entrenar_bench.files import write_atomic


class CachedMNIST1DDataModule(MNIST1DDataModule):
    """``MNIST1DDataModule`` whose generated arrays are cached in ``cache_dir/data``."""

    def __init__(self, cache_dir: str, **kwargs):
        super().__init__(**kwargs)
        self.cache_dir = Path(cache_dir)

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        path = self.cache_dir / "data" / f"mnist1d-{self.num_samples}-seed{self.data_seed}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{path}.lock"):
            if not path.exists():
                x, y = super().load_arrays()
                write_atomic(path, lambda f: np.savez(f, x=x, y=y))
        with np.load(path) as arrays:
            return arrays["x"], arrays["y"]
