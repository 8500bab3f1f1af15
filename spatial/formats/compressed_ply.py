"""PlayCanvas's compressed PLY (`.compressed.ply`, SuperSplat's "compressed PLY"): about 4x smaller than PLY.

Splats in Morton order, in chunks of 256 that each store their own bounds; every splat is four uint32:

    element chunk C   float min_x min_y min_z max_x max_y max_z, min_scale_x..z max_scale_x..z,
                      min_r min_g min_b max_r max_g max_b          (bounds of the chunk's 256 splats)
    element vertex N  uint packed_position  x 11 bits | y 10 | z 11, each in the chunk's bounds
                      uint packed_rotation  index of the largest wxyz component (2 bits), the other three
                                            * sqrt(2)/2 + 0.5 in 10 bits each (the largest made positive)
                      uint packed_scale     log scales 11 | 10 | 11 in the chunk's bounds (clamped to +-20)
                      uint packed_color     r g b (0.5 + C0 * sh0, in the chunk's bounds) | alpha: 8 bits each
    element sh N      uchar f_rest_0..    (f_rest / 8 + 0.5) * 256, channel-major like the INRIA PLY

Axes are the PLY's (ours): SuperSplat turns it upright exactly as it does an INRIA PLY.
Round-trip error: positions 1/2047 of a chunk's extent, log scales 1/2047 of its range, colour 1/510 of its
range, opacity 1/510, rotation about 0.1 degree, higher SH 1/64 (values beyond +-4 clip).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from spatial.errors import file_error
from spatial.files import write_bytes_atomic
from spatial.formats.morton import morton_order
from spatial.formats.quantize import alpha_logit
from spatial.io.ply_header import check_ply_header
from spatial.render.sh import C0

if TYPE_CHECKING:
    from spatial.formats import ExportContext


CHUNK = 256
BOUNDS = ["min_x", "min_y", "min_z", "max_x", "max_y", "max_z",
          "min_scale_x", "min_scale_y", "min_scale_z", "max_scale_x", "max_scale_y", "max_scale_z",
          "min_r", "min_g", "min_b", "max_r", "max_g", "max_b"]
PACKED = ["packed_position", "packed_rotation", "packed_scale", "packed_color"]
ROT_NORM = math.sqrt(2) * 0.5


def _unorm(x: np.ndarray, bits: int) -> np.ndarray:
    top = (1 << bits) - 1
    return np.clip(np.floor(x * top + 0.5), 0, top).astype(np.uint32)


def _normalize(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:  # x [C, 256, 3], lo/hi [C, 1, 3]
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(span < 1e-5, 0.0, (x - lo) / np.where(span < 1e-5, 1.0, span))
    return np.clip(t, 0.0, 1.0)


def _pack_111011(t: np.ndarray) -> np.ndarray:
    return (_unorm(t[..., 0], 11) << 21) | (_unorm(t[..., 1], 10) << 11) | _unorm(t[..., 2], 11)


def _unpack_111011(v: np.ndarray) -> np.ndarray:
    return np.stack([(v >> 21) / 2047.0, ((v >> 11) & 1023) / 1023.0, (v & 2047) / 2047.0], -1)


def encode(params: dict[str, torch.Tensor]) -> bytes:
    p = {k: v.detach().cpu().double().numpy() for k, v in params.items()}
    N, dim = p["means"].shape[0], p["shN"].shape[1]
    order = morton_order(p["means"])
    C = -(-N // CHUNK)
    pad = np.concatenate([order, np.full(C * CHUNK - N, order[-1])])  # the last chunk repeats its last splat

    def chunked(x):  # [N, k] -> [C, 256, k]
        return x[pad].reshape(C, CHUNK, -1)

    means = chunked(p["means"])
    scales = chunked(p["scales"])
    colour = chunked(p["sh0"].reshape(N, 3) * C0 + 0.5)
    lo_m, hi_m = means.min(1, keepdims=True), means.max(1, keepdims=True)
    lo_s, hi_s = np.clip(scales.min(1, keepdims=True), -20, 20), np.clip(scales.max(1, keepdims=True), -20, 20)
    lo_c, hi_c = colour.min(1, keepdims=True), colour.max(1, keepdims=True)
    bounds = np.concatenate([lo_m, hi_m, lo_s, hi_s, lo_c, hi_c], -1).reshape(C, 18).astype("<f4")

    quats = p["quats"][order]
    quats = quats / np.linalg.norm(quats, axis=-1, keepdims=True)
    largest = np.abs(quats).argmax(-1)
    quats = quats * np.where(quats[np.arange(N), largest] < 0, -1.0, 1.0)[:, None]
    rotation = largest.astype(np.uint32)
    for i in range(4):
        rotation = np.where(largest != i, (rotation << 10) | _unorm(quats[:, i] * ROT_NORM + 0.5, 10), rotation)
    alpha = _unorm(1 / (1 + np.exp(-p["opacities"][order])), 8)
    c = _normalize(colour, lo_c, hi_c).reshape(-1, 3)[:N]
    packed = np.stack([
        _pack_111011(_normalize(means, lo_m, hi_m).reshape(-1, 3)[:N]),
        rotation,
        _pack_111011(_normalize(scales, lo_s, hi_s).reshape(-1, 3)[:N]),
        (_unorm(c[:, 0], 8) << 24) | (_unorm(c[:, 1], 8) << 16) | (_unorm(c[:, 2], 8) << 8) | alpha,
    ], -1).astype("<u4")
    rest = p["shN"][order].transpose(0, 2, 1).reshape(N, 3 * dim)  # channel-major
    sh = np.clip(np.trunc((rest / 8 + 0.5) * 256), 0, 255).astype(np.uint8)

    header = ["ply", "format binary_little_endian 1.0", "comment written by spatial", f"element chunk {C}",
              *[f"property float {b}" for b in BOUNDS], f"element vertex {N}", *[f"property uint {v}" for v in PACKED]]
    if dim:
        header += [f"element sh {N}", *[f"property uchar f_rest_{i}" for i in range(3 * dim)]]
    text = "\n".join([*header, "end_header"]) + "\n"
    return text.encode("ascii") + bounds.tobytes() + packed.tobytes() + sh.tobytes()


def is_compressed_ply(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(65536)
    return b"property uint packed_position" in head.split(b"end_header")[0]


def load(path: Path) -> dict[str, torch.Tensor]:
    with np.errstate(all="ignore"):  # a damaged file's values overflow or turn NaN: refused, never warned about
        return _load(path)


def _load(path: Path) -> dict[str, torch.Tensor]:
    from plyfile import PlyData

    path = Path(path)
    check_ply_header(path)
    try:
        ply = PlyData.read(str(path))
        names = [e.name for e in ply.elements]
        chunk, vertex = ply["chunk"].data, ply["vertex"].data
        sh = ply["sh"].data if "sh" in names else None
    except KeyError as e:
        raise file_error(path, f"not a compressed PLY: no {e} element") from None
    except Exception as e:  # noqa: BLE001 - plyfile raises many kinds for a damaged file
        raise file_error(path, f"not a readable compressed PLY ({type(e).__name__}: {str(e)[:200]})") from None
    N, C = len(vertex), len(chunk)
    if N == 0:
        raise file_error(path, "holds no Gaussians (0 vertices)")
    if C != -(-N // CHUNK):
        raise file_error(path, f"{C} chunks for {N} splats; a compressed PLY has one per {CHUNK}")
    missing = [n for n in BOUNDS[:12] if n not in chunk.dtype.names] + \
              [n for n in PACKED if n not in vertex.dtype.names]
    if missing:
        raise file_error(path, f"not a compressed PLY: missing {', '.join(missing)}")
    wrong = [(n, "uint") for n in PACKED if vertex.dtype[n].str not in ("<u4", ">u4", "<i4", ">i4")] + \
            [(n, "float") for n in BOUNDS if n in chunk.dtype.names and chunk.dtype[n].kind != "f"]
    if wrong:
        raise file_error(path, f"not a compressed PLY: {wrong[0][0]} must be a {wrong[0][1]} property")
    rest_names = sorted((n for n in (sh.dtype.names if sh is not None else ()) if n.startswith("f_rest_")),
                        key=lambda n: int(n[7:]) if n[7:].isdigit() else -1)
    if sh is not None and (len(sh) != N or len(rest_names) not in (9, 24, 45)):
        raise file_error(path, f"its sh element has {len(sh)} rows of {len(rest_names)} f_rest values; "
                               f"expected {N} rows of 9, 24 or 45")
    if sh is not None and any(sh.dtype[n].shape != () or sh.dtype[n].str != "|u1" for n in rest_names):
        raise file_error(path, "not a compressed PLY: its f_rest properties must be uchar")

    def col(data, names):
        return np.stack([np.asarray(data[n], np.float64) for n in names], -1)

    bound = col(chunk, BOUNDS[:12])
    has_colour = all(n in chunk.dtype.names for n in BOUNDS[12:])
    colour_bounds = col(chunk, BOUNDS[12:]) if has_colour else np.tile([0.0, 0, 0, 1, 1, 1], (C, 1))
    which = np.arange(N) // CHUNK
    v = {n: np.asarray(vertex[n]).astype(np.uint32) for n in PACKED}

    def lerp(t, lo, hi):
        return lo[which] * (1 - t) + hi[which] * t

    means = lerp(_unpack_111011(v["packed_position"]), bound[:, 0:3], bound[:, 3:6])
    scales = lerp(_unpack_111011(v["packed_scale"]), bound[:, 6:9], bound[:, 9:12])
    r = v["packed_rotation"]
    three = np.stack([(r >> 20) & 1023, (r >> 10) & 1023, r & 1023], -1) / 1023.0
    three = (three - 0.5) / ROT_NORM
    largest = (r >> 30).astype(np.int64)
    quats = np.zeros((N, 4))
    others = np.array([[j for j in range(4) if j != i] for i in range(4)])[largest]  # [N, 3]
    np.put_along_axis(quats, others, three, -1)
    quats[np.arange(N), largest] = np.sqrt(np.maximum(0.0, 1 - (three**2).sum(-1)))
    pc = v["packed_color"]
    rgb = np.stack([(pc >> 24) & 255, (pc >> 16) & 255, (pc >> 8) & 255], -1) / 255.0
    rgb = lerp(rgb, colour_bounds[:, 0:3], colour_bounds[:, 3:6])
    alpha = (pc & 255) / 255.0
    dim = len(rest_names) // 3
    if dim:
        b = col(sh, rest_names)
        n = np.where(b == 0, 0.0, np.where(b == 255, 1.0, (b + 0.5) / 256))
        shN = ((n - 0.5) * 8).reshape(N, 3, dim).transpose(0, 2, 1)
    else:
        shN = np.zeros((N, 0, 3))
    params = {"means": means, "quats": quats, "scales": scales, "opacities": alpha_logit(alpha),
              "sh0": ((rgb - 0.5) / C0)[:, None, :], "shN": shN}
    out = {k: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) for k, x in params.items()}
    if not all(torch.isfinite(x).all() for x in out.values()):
        raise file_error(path, "holds NaN or infinite bounds")
    return out


def save(params: dict[str, torch.Tensor], path: Path, context: ExportContext | None = None) -> None:
    write_bytes_atomic(path, encode(params))
