"""Paths that a file names (an image in transforms.json, a layer's splats in a world file, a SOG's images), kept
inside the folder of the file that names them.

A scene or world from a stranger could otherwise name `/home/you/.ssh/id_rsa`, `../../secret.png` or a symlink
that leads out, and reading it would read any file the user can. Set `SPATIAL_ALLOW_OUTSIDE_PATHS=1` to read
such a folder anyway (your own scene whose images are linked from elsewhere).
"""

from __future__ import annotations

import os
from pathlib import Path

from spatial.errors import file_error

ALLOW = "SPATIAL_ALLOW_OUTSIDE_PATHS"


def outside_allowed() -> bool:
    return os.environ.get(ALLOW, "") not in ("", "0")


def inside(folder: Path, name: str, file: Path, where: str) -> Path:
    """`folder / name`, refused (naming `file` and `where` in it the name is) when it leads outside `folder`: an
    absolute path, `..` past the folder, or a symlink whose target is outside."""
    folder = Path(folder)
    path = Path(os.path.normpath(folder / name))
    if not outside_allowed():
        check_inside(folder, path, file, f"{where} {name[:200]!r}")
    return path


def check_inside(folder: Path, path: Path, file: Path, what: str) -> None:
    """Refuse `path` unless it lies in `folder`, written and resolved (unless `SPATIAL_ALLOW_OUTSIDE_PATHS`)."""
    if outside_allowed():
        return
    folder = Path(folder)
    if not Path(os.path.normpath(path)).is_relative_to(os.path.normpath(folder)) or \
            not Path(path).resolve().is_relative_to(folder.resolve()):
        raise file_error(file, f"{what} leads outside {folder} (an absolute path, '..' or a link out); a scene's or "
                               f"world's files stay in its folder (set {ALLOW}=1 to allow it)")
