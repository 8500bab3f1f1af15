"""The built-in synthetic scenes: a registry, and a cache of rendered scene folders.

    >>> from spatial.scenes import make_scene
    >>> path = make_scene("orbit", size="test")   # rendered once, then read from the cache
    >>> scene = spatial.load_scene(path)

Scenes are deterministic: the same name, size and seed give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from spatial.scenes import facade, orbit
from spatial.scenes.config import SceneSize

SCENES = {"orbit": orbit, "facade": facade}
DEFAULT_SCENE = "orbit"
GENERATOR_VERSION = 2  # bump when rendering changes, so caches are rebuilt (2: instance masks)


def cache_dir() -> Path:
    """Where rendered scenes are kept: `$SPATIAL_CACHE_DIR/scenes`, else `~/.cache/spatial/scenes`."""
    base = os.environ.get("SPATIAL_CACHE_DIR")
    return Path(base) / "scenes" if base else Path.home() / ".cache" / "spatial" / "scenes"


def scene_size(size: str | SceneSize) -> SceneSize:
    from spatial.scenes.config import SIZES

    if isinstance(size, SceneSize):
        return size
    if size not in SIZES:
        raise KeyError(f"unknown scene size {size!r}; choose from {', '.join(SIZES)}")
    return SIZES[size]


def make_scene(name: str = DEFAULT_SCENE, size: str | SceneSize = "default", seed: int = 0,
               root: Path | None = None, progress=None) -> Path:
    """Path of the rendered scene folder, rendering it first unless a complete copy is cached."""
    from spatial.scenes.generate import generate

    if name not in SCENES:
        raise KeyError(f"unknown scene {name!r}; choose from {', '.join(SCENES)}")
    spec = scene_size(size)
    key = json.dumps([name, spec.__dict__, seed, GENERATOR_VERSION], sort_keys=True)
    label = size if isinstance(size, str) else "custom"
    folder = (root or cache_dir()) / f"{name}-{label}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    if (folder / ".complete").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Render into a temporary folder and rename it into place: an interrupted render leaves no
    # half scene behind, and two processes rendering the same scene do not mix their files.
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        generate(SCENES[name], spec, tmp, seed=seed, progress=progress)
        (tmp / ".complete").write_text(key)
        try:
            tmp.rename(folder)
        except OSError:  # another process finished first
            if not (folder / ".complete").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
