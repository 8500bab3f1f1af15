"""User-facing errors.

A `SpatialError` carries a one-line message that names the offending file and says what to do.
The command line prints it without a traceback; library users catch it like any exception.
"""

from __future__ import annotations

from pathlib import Path


class SpatialError(Exception):
    """An error caused by the user's input (a bad file, a missing folder), not by a bug."""


def file_error(path: str | Path, problem: str) -> SpatialError:
    """`SpatialError` whose message starts with the path, the way compilers report errors."""
    return SpatialError(f"{path}: {problem}")
