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


class OutputError(EntrenarError, OSError):
    """An output that cannot be written (a read-only place, a full disk): one line naming the path, exit
    code 2. Also an ``OSError``, so code that handles failed writes keeps handling it."""

    exit_code = 2

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}" if self.filename else super().__str__()


class Interrupted(EntrenarError):
    """A signal (TERM, INT, HUP) stopped the command after its sweep was stopped: exit code 128 + signal."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum
