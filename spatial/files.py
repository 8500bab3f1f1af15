"""Writing files so that an interruption never leaves a half-written one behind."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from glob import escape as glob_escape
from pathlib import Path

from spatial.errors import SpatialError


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary name beside `path` to write to; renamed onto `path` only if the block succeeds.

        with atomic_path(out) as tmp:
            write_something(tmp)

    On any error (including Ctrl-C) the temporary file is removed and `path` is left as it was.
    An unwritable destination raises a `SpatialError` naming it.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(path)
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise SpatialError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _remove_stale_temporaries(path: Path) -> None:
    """Remove temporary files of earlier writes to `path` whose process is gone (killed mid-write)."""
    for old in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        pid = old.name[len(path.name) + 2:-len(".tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            old.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: Path, data: dict) -> None:
    """Write `data` as indented JSON to a temporary name beside `path`, then rename it into place."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2))
