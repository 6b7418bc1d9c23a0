"""The project's own errors. Each carries a message that says what to change."""

from __future__ import annotations


class HayMakerError(Exception):
    """Base class; ``exit_code`` is what the command line exits with.

    ``fix``, when given, is what to do about it; the message ends with it, and `doctor` shows it apart.
    """

    exit_code = 1

    def __init__(self, *args, fix: str = ""):
        self.fix = fix
        if fix and args:
            args = (f"{args[0]}: {fix}", *args[1:])
        super().__init__(*args)


class InvalidInput(HayMakerError):
    """Bad flags, bad config or a bad scenario file: exit 1."""


class CatalogError(InvalidInput):
    """One or more scenario files are invalid; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class Refused(HayMakerError):
    """A policy or the budget refuses the run: exit 2."""

    exit_code = 2
