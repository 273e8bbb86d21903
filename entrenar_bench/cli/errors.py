"""Errors the command line turns into one line on stderr and an exit code."""


class UsageError(Exception):
    """Bad input (options, files, directories): one line, exit code 2, nothing run."""

    exit_code = 2


class NoResults(Exception):
    """The sweep ran but no run completed: exit code 1."""

    exit_code = 1
