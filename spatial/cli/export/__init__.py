"""`spatial export`: a command per splat format in spatial.formats' registry, and mesh and point-cloud exports.

Splat formats share `SplatExport` (input, output and the opacity/box filters): `export_commands()` makes
one subcommand per registered format, so a new format needs no file here. Meshes and point clouds have
their own options, each in its own file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields, make_dataclass
from pathlib import Path
from typing import ClassVar, Literal

import tyro
from rich.console import Console

from spatial.cli.export.paths import output_path
from spatial.errors import SpatialError


@dataclass
class SplatExport:
    model: tyro.conf.Positional[Path]
    """Training run folder, checkpoint (.pt), or splat file (any format `spatial export` writes)."""
    out: Path | None = None
    """Output file (default: exports/splats.SUFFIX inside the run folder, or beside the input file)."""
    min_opacity: float = 0.0
    """Leave out Gaussians less opaque than this (0-1); 0.005 drops the nearly invisible ones."""
    box_min: tuple[float, float, float] | None = None
    """Keep only Gaussians whose centre is inside the box from --box-min to --box-max (world units)."""
    box_max: tuple[float, float, float] | None = None
    """Upper corner of the box (see --box-min)."""
    object: int | None = None
    """Keep only this object of the world (spatial/splats/objects.py: the large planes first, a floor or a wall, then
    the things on them from the largest); an ID it does not have lists those it has, with their sizes."""
    max_splats: str | None = None
    """Keep at most this many Gaussians (a count, or a percentage such as 25%): neighbours are merged in pairs,
    those that show least in the training views first (by opacity and size, for a splat file)."""
    refine_steps: int = 200
    """With --max-splats and a run whose training views are known: optimisation steps that fit the smaller world
    to the full world's renders (no photos needed; about 0.1-0.3 s each on a CPU). 0: merge only."""
    input_spz_axes: Literal["rub", "rdf"] = "rub"
    """Axes of an SPZ input, which the file does not say: rub (Niantic's, the format's own: Niantic's tools,
    Scaniverse, spatial) or rdf (splat-transform and SuperSplat write SPZ in the PLY's axes; without rdf their
    files come in upside down)."""

    suffix: ClassVar[str] = ".ply"  # the format written, a key of spatial.formats.SPLAT_FORMATS
    also: ClassVar[tuple[str, ...]] = ()  # other endings it writes (SOG's meta.json: the unbundled form)
    options: ClassVar[type | None] = None  # the format's ExportOptions, whose fields this command also has

    def main(self) -> None:
        import torch

        from spatial.formats import ExportContext, save_splats, splat_ending, splat_format
        from spatial.splats import select
        from spatial.trained import load_splat_model

        streamed = getattr(self, "lod", 0) > 1  # SOG's levels of detail are a folder of units
        out = output_path(self.model, self.out, "splats-lod/lod-meta.json" if streamed else f"splats{self.suffix}",
                          self.suffix, *self.also)
        if splat_ending(out) not in (self.suffix, *self.also):  # x.compressed.ply ends in .ply, but is another format
            raise SpatialError(f"{out}: that name is a {splat_format(out).command} file; this command writes "
                               f"{self.suffix} (use `spatial export {splat_format(out).command}`, or another name)")
        model = load_splat_model(self.model, spz_axes=self.input_spz_axes)
        mask = select.by_opacity(model.params, self.min_opacity)
        if (self.box_min is None) != (self.box_max is None):
            raise SpatialError("give both --box-min and --box-max, or neither")
        if self.box_min is not None:
            mask &= select.in_box(model.params, torch.tensor(self.box_min), torch.tensor(self.box_max))
        if self.object is not None:
            mask &= _object_mask(model.params, self.object, self.model)
        kept = int(mask.sum())
        if kept == 0:
            raise SpatialError(f"{self.model}: no Gaussian passes the filters (--min-opacity, --box-*, --object); "
                               "nothing to write")
        params = select.subset(model.params, mask)
        limit = kept if self.max_splats is None else splat_count(self.max_splats, kept)
        # the scene is read only when something needs its cameras (simplifying, a format that shows the world), once
        cameras = functools.cache(lambda: _training_cameras(model))
        if self.refine_steps < 0:
            raise SpatialError(f"--refine-steps {self.refine_steps}: give 0 (merge only) or more steps")
        if limit < kept:
            from spatial.splats.simplify import simplify_shown

            background = torch.tensor(model.background, dtype=torch.float32)  # refine moves it to the world's device
            params, kept = simplify_shown(params, limit, cameras(), self.refine_steps, background), limit
        options = {f.name: getattr(self, f.name) for f in fields(self.options)} if self.options else {}
        save_splats(params, out, ExportContext(training_cameras=cameras), **options)
        console = Console()
        console.print(f"wrote {kept:,} of {model.count:,} Gaussians of {model.origin} to [bold]{out}[/]",
                      highlight=False)
        if "spz_axes" in options:  # the file cannot say which axes it holds, so the user is told
            console.print(SPZ_AXES_NOTE[options["spz_axes"]], highlight=False)


SPZ_AXES_NOTE = {
    "rub": "[yellow]note:[/] SPZ in Niantic's axes (right-up-back, the format's own): Niantic's viewers and "
           "Scaniverse show it upright; for SuperSplat or splat-transform, export with --spz-axes rdf",
    "rdf": "[yellow]note:[/] SPZ in the PLY's axes (right-down-front), as SuperSplat and splat-transform store it; "
           "Niantic's viewers show it upside down (they expect --spz-axes rub)",
}


def splat_count(text: str, total: int) -> int:
    """`--max-splats`: "100000" or "25%" of `total`, at least 1."""
    try:
        value = float(text[:-1]) * total / 100 if text.endswith("%") else int(text)
    except ValueError:
        raise SpatialError(f"--max-splats {text!r}: give a number of Gaussians or a percentage such as 25%") from None
    if value <= 0 or (text.endswith("%") and float(text[:-1]) > 100):
        raise SpatialError(f"--max-splats {text!r}: give a count above 0 or a percentage from 0 to 100")
    return max(1, round(value))


def _training_cameras(model):
    try:
        return model.training_cameras()
    except SpatialError:  # a splat file, or a run whose scene is gone: the format picks a view itself
        return None


def export_commands() -> dict[str, type]:
    """`spatial export`'s subcommands: one per registered splat format, then mesh, density-mesh, points and
    collider."""
    from spatial.cli.export.collider import ExportCollider
    from spatial.cli.export.density_mesh import ExportDensityMesh
    from spatial.cli.export.mesh import ExportMesh
    from spatial.cli.export.points import ExportPoints
    from spatial.formats import SPLAT_FORMATS

    splats = {}
    for fmt in SPLAT_FORMATS.values():
        options = fmt.export_options()
        splats[fmt.command] = make_dataclass(
            f"Export{fmt.command.title().replace('-', '')}", [], bases=(*([options] if options else []), SplatExport),
            namespace={"suffix": fmt.suffix, "also": fmt.also, "options": options,
                       "__doc__": f"Export splats as {fmt.summary}."})
    return {**splats, "mesh": ExportMesh, "density-mesh": ExportDensityMesh, "points": ExportPoints,
            "collider": ExportCollider}


def _object_mask(params: dict, object_id: int, source: Path):
    """`[N]` bool: the Gaussians of object `object_id` of the world (spatial.splats.objects.segment)."""
    import torch

    from spatial.splats.objects import segment

    labels = segment(params)
    counts = torch.bincount(labels[labels >= 0])
    if not 0 <= object_id < len(counts):
        listed = ", ".join(f"{i} ({int(c):,} Gaussians)" for i, c in enumerate(counts[:12].tolist()))
        more = f" and {len(counts) - 12} more" if len(counts) > 12 else ""
        raise SpatialError(f"{source}: no object {object_id}; its objects are " + (listed + more if len(counts) else
                           "none (too few opaque Gaussians)"))
    return labels == object_id
