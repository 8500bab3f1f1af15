"""Streamed SOG (`lod-meta.json`): a world at several levels of detail, cut into spatial chunks, each level's
chunks packed into unbundled SOG units, as PlayCanvas's splat-transform writes it and its engine streams it.

    world/lod-meta.json     {"version": 1, "count", "counts": [per level], "lodLevels", "filenames", "tree"}
    world/0_0/meta.json     level 0 (the full world), unit 0: an unbundled SOG (spatial/formats/sog.py)
    world/1_0/meta.json     level 1: half the Gaussians, merged (spatial/splats/simplify.py) ...

`tree` is a binary tree over space (split at the median of the longest axis of the centres of every level),
each node with the `bound` of what it holds; a leaf names, per level, the range `{file, offset, count}` of its
Gaussians in a unit. A unit takes leaves until it holds `CHUNK` Gaussians; inside it each leaf's Gaussians are
in Morton order. Level k holds about 2^-k of the world's Gaussians; a viewer loads the coarse levels first and
the fine ones where the camera is close.

Reading gives one level (0 by default): every unit of that level, in file order, as splat-transform reads it.
This module is the layout (the tree and the manifest); spatial/formats/sog.py encodes and decodes the units.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from spatial.errors import file_error
from spatial.formats.morton import morton_order
from spatial.io.json_util import parse_json
from spatial.io.paths import check_inside

CHUNK = 512 * 1024  # Gaussians a leaf and a unit hold at most (splat-transform's --lod-chunk-count default)
MAX_LEVELS = 16
MAX_LOD_META = 16 << 20  # bytes of lod-meta.json: a node takes ~300 bytes, a world one leaf per chunk


def is_lod_path(path: Path) -> bool:
    return Path(path).name.lower().endswith("lod-meta.json")


def levels_of(params: dict[str, torch.Tensor], levels: int, cameras=None) -> list[dict[str, torch.Tensor]]:
    """The world at `levels` levels of detail: itself, then half its Gaussians, a quarter, ... (merged and, with
    cameras, refined: spatial.splats.simplify)."""
    from spatial.splats.simplify import simplify_shown

    N = params["means"].shape[0]
    out = [{k: v.detach() for k, v in params.items()}]
    for level in range(1, levels):
        out.append(simplify_shown(params, max(1, N >> level), cameras, label=f"level {level}: "))
    return out


def plan(levels: list[dict[str, torch.Tensor]], path: Path, chunk: int = CHUNK) -> tuple[dict, list[list[np.ndarray]]]:
    """The layout of `levels` (finest first) as a streamed SOG: lod-meta.json's content, and per level the rows of
    each unit, in the order the unit stores them (unit i of level k is written to `k_i/meta.json`)."""
    if not 1 <= len(levels) <= MAX_LEVELS:
        raise file_error(path, f"a streamed SOG has 1 to {MAX_LEVELS} levels of detail (given {len(levels)})")
    means = [lv["means"].detach().cpu().double().numpy() for lv in levels]
    extent = [np.exp(lv["scales"].detach().cpu().double().numpy()).max(-1) * 3 for lv in levels]  # 3 sigma
    level_of = np.concatenate([np.full(len(m), i) for i, m in enumerate(means)])
    row = np.concatenate([np.arange(len(m)) for m in means])
    centres = np.concatenate(means)
    units: list[list[list[np.ndarray]]] = [[[]] for _ in levels]  # per level, per unit, the leaves' rows
    filenames: list[str] = []

    def build(index: np.ndarray) -> dict:
        if len(index) > chunk:
            points = centres[index]
            axis = int(np.argmax(points.max(0) - points.min(0)))
            order = index[np.argsort(points[:, axis], kind="stable")]
            half = len(order) // 2
            children = [build(order[:half]), build(order[half:])]
            lo = np.minimum(*(np.array(c["bound"]["min"]) for c in children))
            hi = np.maximum(*(np.array(c["bound"]["max"]) for c in children))
            return {"bound": {"min": lo.tolist(), "max": hi.tolist()}, "children": children}
        lods, lo, hi = {}, np.full(3, np.inf), np.full(3, -np.inf)
        for level in range(len(levels)):
            rows = row[index[level_of[index] == level]]
            if not len(rows):
                continue
            rows = rows[morton_order(means[level][rows])]
            lo = np.minimum(lo, (means[level][rows] - extent[level][rows, None]).min(0))
            hi = np.maximum(hi, (means[level][rows] + extent[level][rows, None]).max(0))
            unit = units[level][-1]
            name = f"{level}_{len(units[level]) - 1}/meta.json"
            if name not in filenames:
                filenames.append(name)
            held = sum(len(r) for r in unit)
            lods[str(level)] = {"file": filenames.index(name), "offset": held, "count": len(rows)}
            unit.append(rows)
            if held + len(rows) > chunk:
                units[level].append([])
        return {"bound": {"min": lo.tolist(), "max": hi.tolist()}, "lods": lods}

    tree = build(np.arange(len(centres)))
    counts = [len(m) for m in means]
    meta = {"version": 1, "asset": {"generator": "spatial", "chunkGaussians": chunk}, "count": sum(counts),
            "counts": counts, "lodLevels": len(levels), "lodErrors": False, "filenames": filenames, "tree": tree}
    return meta, [[np.concatenate(leaves) for leaves in level_units if leaves] for level_units in units]


def units_of(path: Path, level: int = 0) -> list[tuple[Path, int]]:
    """The units holding `level` of the streamed SOG `path` (0: the finest), in file order, each with the number
    of that level's Gaussians its tree places there (which the unit must hold), every reference checked."""
    path = Path(path)
    if path.stat().st_size > MAX_LOD_META:
        raise file_error(path, f"is {path.stat().st_size:,} bytes: implausible for a lod-meta.json")
    meta = parse_json(path.read_bytes(), path)
    if not isinstance(meta, dict) or meta.get("version", 1) != 1:
        raise file_error(path, "is not a streamed SOG of version 1 (lod-meta.json)")
    levels, names = meta.get("lodLevels"), meta.get("filenames")
    if not isinstance(levels, int) or isinstance(levels, bool) or not 1 <= levels <= MAX_LEVELS:
        raise file_error(path, f"lodLevels must be 1 to {MAX_LEVELS}")
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise file_error(path, "filenames must be a list of unit paths")
    if not 0 <= level < levels:
        raise file_error(path, f"has levels 0 to {levels - 1}; there is no level {level}")
    refs: dict[int, int] = {}  # unit file -> Gaussians of `level` the tree places in it
    stack, nodes = [meta.get("tree")], 0
    while stack:
        node = stack.pop()
        nodes += 1
        if not isinstance(node, dict) or nodes > 1 << 22:
            raise file_error(path, "its tree is not a tree of nodes")
        children, lods = node.get("children", []), node.get("lods", {})
        if not isinstance(children, list) or not isinstance(lods, dict):
            raise file_error(path, "a tree node's children must be a list and its lods a mapping")
        stack += children
        ref = lods.get(str(level))
        if ref is None:
            continue
        fields = [ref.get(k) if isinstance(ref, dict) else None for k in ("file", "offset", "count")]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in fields) or \
                fields[0] >= len(names):
            raise file_error(path, f"a level-{level} reference {str(ref)[:80]} is not a file, offset and count "
                                   "within the file list")
        refs[fields[0]] = refs.get(fields[0], 0) + fields[2]
    counts = meta.get("counts")
    if counts is not None and (not isinstance(counts, list) or len(counts) != levels
                               or counts[level] != sum(refs.values())):
        raise file_error(path, f"its counts say {str(counts)[:60]} Gaussians per level, but its tree places "
                               f"{sum(refs.values())} in level {level}")
    if not refs:
        raise file_error(path, f"level {level} holds no Gaussians")
    out = []
    for file in sorted(refs):
        unit = path.parent / names[file]
        check_inside(path.parent, unit, path, f"its unit {names[file]!r}")
        if is_lod_path(unit) or not unit.name.lower().endswith(("meta.json", ".sog")):
            raise file_error(path, f"its unit {names[file]!r} is not a SOG (a meta.json or .sog)")
        if not unit.is_file():
            raise file_error(path, f"names the unit {names[file]}, which is not there")
        out.append((unit, refs[file]))
    return out
