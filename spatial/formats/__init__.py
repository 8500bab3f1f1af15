"""File formats, in one registry: splats, meshes and point clouds, each named by its suffix.

    params = load_splats("scene.spz")          # raw parameters, as `spatial.splats.model` describes
    save_splats(params, "scene.splat")

Every splat format reads into and writes from the same dict of raw parameters, so converting is loading
one and saving another; each is a module with `load(path) -> params` and `save(params, path, context)`
(atomic: a temporary name, then a rename), where the `ExportContext` holds the format's options and what is
known of the world the splats came from. A module may define an `ExportOptions` dataclass: its fields become
options of its `spatial export` command and keyword arguments of `save_splats`. A new splat format is
a new file here plus one `SplatFormat` line in `SPLAT_FORMATS`: `spatial export NAME`, `spatial view`,
`spatial render`, `load_model` and `load_splats` all take it from this table (or from
`register_splat_format`, for a format added at run time).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from spatial.errors import SpatialError, file_error
from spatial.splats.model import check_splats

if TYPE_CHECKING:
    from spatial.cameras import Cameras


def _no_cameras() -> None:
    return None


@dataclass(frozen=True)
class ExportContext:
    """What every format's `save` gets besides the splats and the path; a format uses what it needs."""

    options: Any = None  # the format's ExportOptions (its defaults when none were given); None for a format without
    training_cameras: Callable[[], Cameras | None] = _no_cameras
    """The cameras the splats were trained from, or None when unknown (a bare splat file). Called by a format
    that needs them (a web page starts its view at one), so the scene is read only then."""


@dataclass(frozen=True)
class SplatFormat:
    suffix: str  # ".ply", lower case; may have several dots (".compressed.ply"): a name's longest match wins
    command: str  # `spatial export COMMAND`
    summary: str  # one line for --help and messages
    module: str  # the module with load(path) and save(params, path, context)
    also: tuple[str, ...] = ()  # other endings of the names it reads and writes ("meta.json": SOG's folder form)

    def load(self, path: Path, **options) -> dict[str, torch.Tensor]:
        """Read `path`; `options` are the format's own reading options (SPZ: `spz_axes`)."""
        return importlib.import_module(self.module).load(path, **options)

    def save(self, params: dict[str, torch.Tensor], path: Path, context: ExportContext | None = None,
             **options) -> None:
        """Write `params` to `path`; `options` are the format's `ExportOptions` fields (they replace the
        context's)."""
        context = context or ExportContext()
        kind = self.export_options()
        if kind is None and options:
            raise TypeError(f"{self.command} files take no options (given {', '.join(options)})")
        if kind is not None and (options or context.options is None):
            context = replace(context, options=kind(**options))
        importlib.import_module(self.module).save(params, path, context)

    def export_options(self) -> type | None:
        """The format's own export options (a dataclass), if it has any."""
        return getattr(importlib.import_module(self.module), "ExportOptions", None)


SPLAT_FORMATS: dict[str, SplatFormat] = {f.suffix: f for f in (
    SplatFormat(".ply", "ply", "INRIA 3DGS PLY: lossless, every SH band; SuperSplat and the 3DGS viewers open it",
                "spatial.formats.ply"),
    SplatFormat(".splat", "splat", "antimatter15 .splat: 32 bytes a splat, colour without SH, for web viewers",
                "spatial.formats.splat"),
    SplatFormat(".compressed.ply", "compressed-ply", "PlayCanvas compressed PLY: chunked and quantised, about 4x "
                "smaller than PLY, every SH band; SuperSplat writes and reads it", "spatial.formats.compressed_ply"),
    SplatFormat(".sog", "sog", "PlayCanvas SOG: WebP images and palettes, 15-20x smaller than PLY, for web "
                "viewers (a path ending meta.json writes it unbundled, lod-meta.json streamed with levels of detail)",
                "spatial.formats.sog", also=("meta.json", "lod-meta.json")),
    SplatFormat(".glb", "glb", "glTF binary with KHR_gaussian_splatting (y-up, as glTF is): lossless, every SH band, "
                "for glTF tools and three.js-class viewers", "spatial.formats.glb"),
    SplatFormat(".html", "html", "a web page that shows the world in any browser, from disk, without Python "
                "(viser's client; colour without SH; written only)", "spatial.formats.html"),
    SplatFormat(".spz", "spz", "Niantic SPZ (version 3, or 4 on request; Niantic's right-up-back axes): fixed "
                "point, about 6x smaller than PLY, SH up to degree 3", "spatial.formats.spz"),
)}

# Meshes are read and written through trimesh; point clouds are PLY (spatial.io.points_ply). A .ply is
# a splat file when its header has the 3DGS properties (`is_splat_ply`), else a mesh or point cloud.
MESH_WRITE_SUFFIXES = (".ply", ".obj", ".glb")  # what `spatial export mesh` writes
MESH_READ_SUFFIXES = (".ply", ".obj", ".glb", ".gltf", ".stl", ".off")  # what `spatial view` shows beside splats
POINT_SUFFIXES = (".ply",)  # point clouds, read and written


def register_splat_format(fmt: SplatFormat) -> None:
    """Add a splat format at run time (a plugin, or a test); the built-in ones are in `SPLAT_FORMATS`."""
    if not fmt.suffix.startswith(".") or fmt.suffix != fmt.suffix.lower():
        raise ValueError(f"a format's suffix is lower case with its dot, e.g. '.ply', not {fmt.suffix!r}")
    SPLAT_FORMATS[fmt.suffix] = fmt


def splat_suffixes() -> tuple[str, ...]:
    """Every name ending a splat format claims (`.ply`, `.compressed.ply`, ..., `meta.json`)."""
    return tuple(e for fmt in SPLAT_FORMATS.values() for e in (fmt.suffix, *fmt.also))


def splat_ending(path: Path) -> str | None:
    """The longest registered ending of `path`'s name (`.compressed.ply` before `.ply`), or None."""
    name = Path(path).name.lower()
    endings = [e for e in splat_suffixes() if name.endswith(e)]
    return max(endings, key=len) if endings else None


def splat_format(path: Path) -> SplatFormat:
    """The splat format `path`'s name ends in; a one-line error naming the ones there are otherwise."""
    ending = splat_ending(path)
    for fmt in SPLAT_FORMATS.values():
        if ending in (fmt.suffix, *fmt.also):
            return fmt
    raise SpatialError(f"{path}: unknown splat format {Path(path).suffix!r}; choose from "
                       f"{', '.join(splat_suffixes())}")


def is_splat_file(path: Path) -> bool:
    """Whether `path` is a splat file by its name (and, for .ply, by its header)."""
    path = Path(path)
    if splat_ending(path) == ".ply":
        return is_splat_ply(path)
    if splat_ending(path) == ".glb":  # a glTF mesh, unless it uses the splat extension
        with open(path, "rb") as f:
            return b'"KHR_gaussian_splatting"' in f.read(1 << 20)
    return splat_ending(path) is not None


def is_splat_ply(path: Path) -> bool:
    """Whether a PLY's header has the 3DGS vertex properties (else it is a mesh or point cloud)."""
    with open(path, "rb") as f:
        head = f.read(65536).decode("latin-1")
    if not head.startswith("ply") or "end_header" not in head:
        raise file_error(path, "not a PLY file (no 'ply' ... 'end_header' header)")
    names = {line.split()[-1] for line in head.split("end_header")[0].splitlines() if line.startswith("property")}
    return {"opacity", "scale_0", "rot_0", "f_dc_0"} <= names or {"packed_position", "packed_color"} <= names


def save_splats(params: dict[str, torch.Tensor], path: Path, context: ExportContext | None = None,
                **options) -> None:
    """Write raw splat parameters in the format that `path`'s suffix names (see `SPLAT_FORMATS`); `options`
    are that format's own (its `ExportOptions` fields), `context` what a format may use of the world."""
    splat_format(path).save(params, Path(path), context, **options)


def load_splats(path: Path, spz_axes: str = "rub") -> dict[str, torch.Tensor]:
    """Raw splat parameters from a splat file of any format in `SPLAT_FORMATS`, checked (`check_splats`).
    `spz_axes`: the axes an SPZ file stores, which it does not say (spatial/formats/spz.py): "rub", Niantic's,
    or "rdf", as splat-transform and SuperSplat write it; other formats say theirs."""
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "file not found" if not path.exists() else "not a file")
    fmt = splat_format(path)
    return check_splats(path, fmt.load(path, **({"spz_axes": spz_axes} if fmt.suffix == ".spz" else {})))
