"""Where an export writes: the default name inside the run folder, and a suffix the exporter writes."""

from __future__ import annotations

from pathlib import Path

from spatial.errors import SpatialError


def output_path(model: Path, out: Path | None, default_name: str, *suffixes: str) -> Path:
    """`out`, checked to end in one of `suffixes`; by default `default_name` in the run's exports/ folder."""
    if out is None:
        out = model / "exports" / default_name if model.is_dir() else model.parent / default_name
        if out.resolve() == model.resolve():  # never overwrite the input by default
            out = out.with_name(default_name.replace(".", "_export.", 1))
    if not out.name.lower().endswith(suffixes):
        raise SpatialError(f"{out}: this exporter writes {' or '.join(suffixes)} files; "
                           f"name the output with that suffix")
    return out
