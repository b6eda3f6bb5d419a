"""Error types: each carries a one-line message naming the problem and what to do."""

from __future__ import annotations


class MagsegError(Exception):
    """Base class of magseg's user-facing errors; the CLI prints the message on one line and exits 2."""


class InputError(MagsegError):
    """An input file or argument is missing, unreadable or not what the command expects."""


class CRSError(InputError):
    """A raster or layer has no CRS, or one the command cannot use."""


class EmptyInputError(InputError):
    """An input holds nothing to work on (an empty raster, a layer without features)."""
