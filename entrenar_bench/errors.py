"""One hierarchy of errors; the command line maps each to one line on stderr and an exit code.

``ConfigError`` is also a Hydra ``CompactHydraException``, so a bad setting inside a plain Hydra run
prints its one-line message, not a traceback.
"""

from hydra.errors import CompactHydraException


class EntrenarError(Exception):
    """Base of every error the tool reports as one line."""

    exit_code = 1


class UsageError(EntrenarError):
    """Bad input (options, files, directories): one line, exit code 2, nothing run."""

    exit_code = 2


class ConfigError(CompactHydraException, UsageError):
    """An invalid setting in a composed config; Hydra prints only this message (no traceback)."""


class NoResults(EntrenarError):
    """The sweep ran but no run completed: exit code 1."""

    exit_code = 1
