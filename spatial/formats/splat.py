"""The `.splat` layout of antimatter15's web viewer, which most web splat viewers read.

32 bytes a splat, no header, sorted by decreasing `volume * opacity` (so a viewer that streams the
file draws the big opaque splats first):

    float32 x, y, z  |  float32 sx, sy, sz (activated)  |  uint8 r, g, b, a  |  uint8 qw, qx, qy, qz

Colours are the degree-0 SH colour and opacity in 0-255 (truncated, as the reference converter
does); the quaternion is normalised and stored as `q * 128 + 128`. Higher SH bands are dropped.
Round-trip error: positions exact, scales to float32 rounding, colour and alpha below 1/255,
quaternion components below 1/128 (before renormalising).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from spatial.errors import file_error
from spatial.files import write_bytes_atomic
from spatial.formats.quantize import alpha_logit
from spatial.render.sh import C0 as SH_C0

if TYPE_CHECKING:
    from spatial.formats import ExportContext


RECORD = np.dtype([("position", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])


def encode(params: dict[str, torch.Tensor]) -> bytes:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # extreme values saturate, as clip() says
        return _encode(params)


def _encode(params: dict[str, torch.Tensor]) -> bytes:
    p = {k: v.detach().cpu().float().numpy() for k, v in params.items()}
    scales_log, opacity_logit = p["scales"], p["opacities"]  # [N, 3], [N]
    order = np.argsort(-np.exp(scales_log.sum(-1)) / (1 + np.exp(-opacity_logit)))
    records = np.empty(len(order), RECORD)
    records["position"] = p["means"][order]
    records["scale"] = np.exp(scales_log[order])
    rgba = np.concatenate([0.5 + np.float32(SH_C0) * p["sh0"][order, 0],
                           (1 / (1 + np.exp(-opacity_logit[order])))[:, None]], -1)  # [N, 4] float32
    records["rgba"] = (rgba * 255).clip(0, 255).astype(np.uint8)
    quats = p["quats"][order]
    quats = quats / np.linalg.norm(quats, axis=-1, keepdims=True)
    records["rot"] = (quats * 128 + 128).clip(0, 255).astype(np.uint8)
    return records.tobytes()


def decode(data: bytes, path: Path) -> dict[str, torch.Tensor]:
    if len(data) % RECORD.itemsize:
        raise file_error(path, f"{len(data)} bytes is not a whole number of 32-byte splats; "
                               "the file is truncated or not a .splat file")
    records = np.frombuffer(data, RECORD)
    rgba = records["rgba"].astype(np.float32) / 255
    quats = (records["rot"].astype(np.float32) - 128) / 128
    quats[np.linalg.norm(quats, axis=-1) == 0] = [1, 0, 0, 0]
    scale = records["scale"]
    if not (np.isfinite(records["position"]).all() and np.isfinite(scale).all() and (scale > 0).all()):
        raise file_error(path, "holds non-finite positions or non-positive scales; not a .splat file?")
    params = {
        "means": records["position"].copy(),
        "quats": quats,
        "scales": np.log(scale),
        "opacities": alpha_logit(rgba[:, 3].astype(np.float64)),
        "sh0": ((rgba[:, :3] - 0.5) / SH_C0)[:, None, :],
        "shN": np.zeros((len(records), 0, 3), np.float32),
    }
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in params.items()}


def save(params: dict[str, torch.Tensor], path: Path, context: ExportContext | None = None) -> None:
    write_bytes_atomic(path, encode(params))


def load(path: Path) -> dict[str, torch.Tensor]:
    return decode(Path(path).read_bytes(), Path(path))
