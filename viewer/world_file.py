"""World files (`NAME.world.json`): the layers of an edited world, to open again in `spatial view`.

    {"spatial_world": 1, "layers": [{"name", "file", "transform", "visible", "locked", "source"}, ...]}

Each layer's splats are a PLY beside the world file (`NAME.LAYER.ply`); `transform` is the layer's 4x4
similarity to the world. World files come from strangers too: every entry is checked before any is loaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

from spatial.errors import SpatialError
from spatial.files import write_json_atomic
from spatial.formats import save_splats


def write_world_file(path: Path, layers) -> None:
    entries = []
    for layer in layers:
        file = path.with_name(f"{path.stem}.{layer.name}.ply")
        save_splats(layer.params, file)
        entries.append({"name": layer.name, "file": file.name, "transform": layer.transform.tolist(),
                        "visible": layer.visible, "locked": layer.locked, "source": layer.source})
    write_json_atomic(path, {"spatial_world": 1, "layers": entries})


def read_world_file(path: Path) -> list[tuple]:
    """(name, splat file path, source, transform [4, 4], visible, locked) of every layer, all checked."""
    from spatial.io.json_util import read_json

    data = read_json(path)
    if data.get("spatial_world") != 1 or not isinstance(data.get("layers"), list):
        raise SpatialError(f"{path}: not a world file (expected 'spatial_world': 1 and a 'layers' list)")
    entries = [_layer_entry(path, i, entry) for i, entry in enumerate(data["layers"])]
    return [(name, _layer_file(path, i, file), *rest) for i, (name, file, *rest) in enumerate(entries)]


def _layer_file(path: Path, index: int, file: str) -> Path:
    """A layer's splat file, kept beside the world file (spatial/io/paths.py)."""
    from spatial.io.paths import check_inside, inside

    found = inside(path.parent, file, path, f"layers[{index}]: file")
    check_inside(path.parent, found, path, f"layers[{index}]: file {file[:200]!r}")
    return found


def _layer_entry(path: Path, index: int, entry) -> tuple:
    """(name, file, source, transform [4, 4], visible, locked) of a world file's layer, checked."""
    import numpy as np

    from spatial.io.json_util import text
    from spatial.transforms import similarity_problem

    where = f"layers[{index}]"
    if not isinstance(entry, dict):
        raise SpatialError(f"{path}: {where} must be an object with 'name', 'file' and 'transform', got {entry!r:.80}")
    name, file = text(path, f"{where}: name", entry.get("name")), text(path, f"{where}: file", entry.get("file"))
    source = entry.get("source")
    if source is not None:
        text(path, f"{where}: source", source)
    problem = similarity_problem(entry.get("transform"))
    if problem:
        raise SpatialError(f"{path}: {where}: transform {problem} (a layer's transform is a 4x4 similarity)")
    T = np.asarray(entry["transform"], np.float64)
    flags = {key: entry.get(key, default) for key, default in (("visible", True), ("locked", False))}
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise SpatialError(f"{path}: {where}: {key} must be true or false, got {value!r:.80}")
    T = torch.tensor(T, dtype=torch.float32, device="cpu")  # the world lives on the CPU
    return name, file, source, T, flags["visible"], flags["locked"]
