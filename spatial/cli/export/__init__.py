"""`spatial export`: one command per output format, each in its own file.

Splat formats share `SplatExport` (input, output and the opacity/box filters); meshes and point
clouds have their own options. Adding a format is adding a file with a dataclass and a `main()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tyro
from rich.console import Console

from spatial.errors import SpatialError


@dataclass
class SplatExport:
    model: tyro.conf.Positional[Path]
    """Training run folder, checkpoint (.pt), or splat file (.ply, .splat, .spz)."""
    out: Path | None = None
    """Output file (default: exports/splats.SUFFIX inside the run folder, or beside the input file)."""
    min_opacity: float = 0.0
    """Leave out Gaussians less opaque than this (0-1); 0.005 drops the nearly invisible ones."""
    box_min: tuple[float, float, float] | None = None
    """Keep only Gaussians whose centre is inside the box from --box-min to --box-max (world units)."""
    box_max: tuple[float, float, float] | None = None
    """Upper corner of the box (see --box-min)."""

    suffix = ".ply"

    def main(self) -> None:
        import torch

        from spatial.formats import save_splats
        from spatial.runs import load_splat_model
        from spatial.splats import select

        out = output_path(self.model, self.out, f"splats{self.suffix}", self.suffix)
        model = load_splat_model(self.model)
        mask = select.by_opacity(model.params, self.min_opacity)
        if (self.box_min is None) != (self.box_max is None):
            raise SpatialError("give both --box-min and --box-max, or neither")
        if self.box_min is not None:
            mask &= select.in_box(model.params, torch.tensor(self.box_min), torch.tensor(self.box_max))
        kept = int(mask.sum())
        if kept == 0:
            raise SpatialError(f"{self.model}: no Gaussian passes the filters (--min-opacity, --box-*); "
                               "nothing to write")
        save_splats(select.subset(model.params, mask), out)
        Console().print(f"wrote {kept:,} of {model.count:,} Gaussians of {model.origin} to [bold]{out}[/]",
                        highlight=False)


def output_path(model: Path, out: Path | None, default_name: str, *suffixes: str) -> Path:
    """`out`, checked to end in one of `suffixes`; by default `default_name` in the run's exports/ folder."""
    if out is None:
        out = model / "exports" / default_name if model.is_dir() else model.parent / default_name
        if out.resolve() == model.resolve():  # never overwrite the input by default
            out = out.with_name(f"{out.stem}_export{out.suffix}")
    if out.suffix.lower() not in suffixes:
        raise SpatialError(f"{out}: this exporter writes {' or '.join(suffixes)} files; "
                           f"name the output with that suffix")
    return out
