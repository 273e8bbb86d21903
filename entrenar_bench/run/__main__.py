"""``python -m entrenar_bench.run``: the Hydra app (see ``entrenar_bench.run.app``).

Hydra's errors (a misspelt key, a wrong type, a failed run) are printed as one line, without
Hydra's search-path listing or stack-trace hint.
"""

import gc
import os
import sys

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from entrenar_bench.run.app import main
from entrenar_bench.run.lifeline import follow_parent


def one_line(error: BaseException) -> str:
    """The first line of the message, with the config key Hydra names (if any) kept."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    cause = error.__cause__
    if isinstance(cause, OmegaConfBaseException) and cause is not error:
        first = f"{first} ({str(cause).strip().splitlines()[0]})"
    return first


if __name__ == "__main__":
    follow_parent()  # started by entrenar-bench: never outlive it
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # Hydra re-raises instead of printing: one line below
    try:
        main()
    except (HydraException, OmegaConfBaseException) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        gc.freeze()
        sys.exit(1)
    finally:
        gc.freeze()  # skip the final collections at exit (~1 s with Lightning loaded)
