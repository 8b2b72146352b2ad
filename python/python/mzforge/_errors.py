"""The exceptions mzforge raises. The native module maps every engine error here, in one place
(``src/errors.rs``); messages are those the ``mzforge`` command line prints after ``error:``."""

from __future__ import annotations

__all__ = [
    "MzforgeError",
    "InvalidInputError",
    "InputReadError",
    "InvalidParameterError",
    "OutputError",
]


class MzforgeError(Exception):
    """Base class of every mzforge error."""


class InvalidInputError(MzforgeError, ValueError):
    """The input is not usable mzML/MGF: unknown format, malformed or truncated file, corrupt
    compressed stream, a spectrum that cannot be decoded (with ``on_bad_spectrum="fail"`` or
    when asked for by position), or arrays that cannot form a spectrum."""


class InputReadError(InvalidInputError, OSError):
    """The input cannot be opened or read at all (missing file, permissions)."""


class InvalidParameterError(MzforgeError, ValueError):
    """A parameter is out of range or inconsistent; the message names it."""


class OutputError(MzforgeError, OSError):
    """Results cannot be written."""
