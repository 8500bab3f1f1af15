"""Niantic's SPZ format: gzipped, column-wise, fixed-point Gaussian splats (about 6x smaller than PLY on a
real capture).

After gunzip, a 16-byte header and then one block per attribute, all points in each block:

    uint32 magic 0x5053474e ("NGSP") | uint32 version | uint32 N | uint8 sh_degree
    uint8 fractional_bits | uint8 flags (1: antialiased) | uint8 reserved
    positions  N x 3 x int24   fixed point, x * 2^fractional_bits  (version 1: float16)
    alphas     N x uint8       sigmoid(opacity) * 255
    colors     N x 3 x uint8   sh0 * 0.15 * 255 + 127.5
    scales     N x 3 x uint8   (log scale + 10) * 16
    rotations  N x 3 x uint8   xyz of the unit quaternion with w >= 0, * 127.5 + 127.5
               (version 3: N x uint32, the "smallest three" components and the largest one's index)
    sh         N x dim x 3 x uint8   x * 128 + 128; degree 1 kept to 5 bits, higher degrees to 4

We write version 2, which every SPZ reader accepts, and read versions 1-3. SPZ stores right-up-back
(OpenGL-like) axes; our world, like the 3DGS PLY, is right-down-forward, so points, rotations and
SH coefficients are flipped on the way in and out (a 180-degree turn about x), as Niantic's library
does when it converts a PLY.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from spatial.errors import file_error
from spatial.files import write_bytes_atomic

MAGIC = 0x5053474E
HEADER = struct.Struct("<IIIBBBB")
FRACTIONAL_BITS = 12  # 1/4096 of a unit: 0.25 mm when units are metres; range +-2048 units
COLOR_SCALE = 0.15
MAX_POINTS = 10_000_000
# Sign of each SH coefficient (degree 1 to 3, gsplat's order) under (x, y, z) -> (x, -y, -z).
SH_FLIP = np.array([-1, -1, 1, -1, 1, 1, -1, 1, -1, 1, -1, -1, 1, -1, 1], np.float64)
POSITION_FLIP = np.array([1, -1, -1], np.float64)
QUAT_FLIP = np.array([1, 1, -1, -1], np.float64)  # wxyz


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(_round(x), 0, 255).astype(np.uint8)


def _round(x: np.ndarray) -> np.ndarray:
    """Round half away from zero (C's `round`), not numpy's half-to-even."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _quantize_sh(x: np.ndarray, bits: int) -> np.ndarray:
    bucket = 1 << (8 - bits)
    q = _round(x * 128.0 + 128.0)
    return np.clip(np.floor((q + bucket / 2) / bucket) * bucket, 0, 255).astype(np.uint8)


def pack(params: dict[str, torch.Tensor], flip_axes: bool = True) -> bytes:
    """The uncompressed SPZ version-2 payload. `flip_axes=False` stores our axes as they are."""
    p = {k: v.detach().cpu().double().numpy() for k, v in params.items()}
    means, quats, shN = p["means"], p["quats"], p["shN"]  # [N, 3], [N, 4] wxyz, [N, K-1, 3]
    N, dim = means.shape[0], shN.shape[1]
    if dim not in (0, 3, 8, 15):
        raise ValueError(f"SPZ holds SH degrees 0-3; got {dim} higher-band coefficients")
    if flip_axes:
        means, quats, shN = means * POSITION_FLIP, quats * QUAT_FLIP, shN * SH_FLIP[:dim, None]
    fixed = _round(means * (1 << FRACTIONAL_BITS))
    if np.abs(fixed).max(initial=0) >= 1 << 23:
        limit = (1 << 23) / (1 << FRACTIONAL_BITS)
        raise ValueError(f"SPZ positions must lie within +-{limit:g} units of the origin; this scene reaches "
                         f"{np.abs(means).max():.1f}. Crop it or scale it down before exporting")
    fixed = fixed.astype(np.int64).reshape(-1) & 0xFFFFFF
    positions = np.stack([fixed & 0xFF, (fixed >> 8) & 0xFF, (fixed >> 16) & 0xFF], -1).astype(np.uint8)
    alphas = _to_uint8(1 / (1 + np.exp(-p["opacities"])) * 255.0)
    colors = _to_uint8(p["sh0"].reshape(N, 3) * (COLOR_SCALE * 255.0) + 0.5 * 255.0)
    scales = _to_uint8((p["scales"] + 10.0) * 16.0)
    unit = quats / np.linalg.norm(quats, axis=-1, keepdims=True)
    xyz = unit[:, 1:] * np.where(unit[:, :1] < 0, -127.5, 127.5) + 127.5
    rotations = _to_uint8(xyz)
    sh = shN.reshape(N, dim * 3)  # coefficient-major, RGB innermost
    sh = np.concatenate([_quantize_sh(sh[:, :9], 5), _quantize_sh(sh[:, 9:], 4)], -1) if dim else sh
    degree = {0: 0, 3: 1, 8: 2, 15: 3}[dim]
    header = HEADER.pack(MAGIC, 2, N, degree, FRACTIONAL_BITS, 0, 0)
    blocks = [positions, alphas, colors, scales, rotations, sh.astype(np.uint8)]
    return header + b"".join(b.tobytes() for b in blocks)


def payload_sizes(version: int, N: int, degree: int) -> dict[str, int]:
    """Bytes of each block after the header."""
    dim = (degree + 1) ** 2 - 1
    return {"positions": N * 3 * (2 if version == 1 else 3), "alphas": N, "colors": N * 3, "scales": N * 3,
            "rotations": N * (4 if version == 3 else 3), "sh": N * dim * 3}


def unpack(data: bytes, path: Path, flip_axes: bool = True) -> dict[str, torch.Tensor]:
    if len(data) < HEADER.size:
        raise file_error(path, "too short to be an SPZ file")
    magic, version, N, degree, fractional_bits, _flags, _ = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise file_error(path, "not an SPZ file (no NGSP header after gunzip)")
    if version not in (1, 2, 3):
        raise file_error(path, f"SPZ version {version} is not supported (this reader knows 1-3)")
    if degree > 3 or N > MAX_POINTS:
        raise file_error(path, f"implausible header: SH degree {degree}, {N} points")
    if N == 0:
        raise file_error(path, "holds no Gaussians (0 points)")
    if version > 1 and fractional_bits > 23:  # 24-bit positions: more fractional bits than that leave none
        raise file_error(path, f"implausible header: {fractional_bits} fractional bits for 24-bit positions")
    dim = (degree + 1) ** 2 - 1
    sizes = payload_sizes(version, N, degree)
    if len(data) != HEADER.size + sum(sizes.values()):
        raise file_error(path, f"holds {len(data) - HEADER.size} bytes of data where {N} points of SH degree "
                               f"{degree} need {sum(sizes.values())}; the file is truncated or corrupt")
    blocks, offset = {}, HEADER.size
    for name, size in sizes.items():
        blocks[name] = np.frombuffer(data, np.uint8, size, offset)
        offset += size

    if version == 1:
        means = blocks["positions"].view("<f2").astype(np.float64).reshape(N, 3)
    else:
        b = blocks["positions"].reshape(N * 3, 3).astype(np.int64)
        fixed = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        fixed = np.where(fixed & 0x800000, fixed - (1 << 24), fixed)
        means = (fixed / (1 << fractional_bits)).reshape(N, 3)
    alpha = (blocks["alphas"].astype(np.float64) / 255.0).clip(0.5 / 255, 1 - 0.5 / 255)
    colors = (blocks["colors"].astype(np.float64).reshape(N, 3) / 255.0 - 0.5) / COLOR_SCALE
    scales = blocks["scales"].astype(np.float64).reshape(N, 3) / 16.0 - 10.0
    quats = _smallest_three(blocks["rotations"], N) if version == 3 else _xyz_rotations(blocks["rotations"], N)
    shN = ((blocks["sh"].astype(np.float64) - 128.0) / 128.0).reshape(N, dim, 3)
    if flip_axes:
        means, quats, shN = means * POSITION_FLIP, quats * QUAT_FLIP, shN * SH_FLIP[:dim, None]
    params = {"means": means, "quats": quats, "scales": scales, "opacities": np.log(alpha / (1 - alpha)),
              "sh0": colors[:, None, :], "shN": shN}
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in params.items()}


def _xyz_rotations(r: np.ndarray, N: int) -> np.ndarray:  # -> [N, 4] wxyz
    xyz = r.reshape(N, 3).astype(np.float64) / 127.5 - 1.0
    w = np.sqrt(np.maximum(0.0, 1.0 - (xyz**2).sum(-1, keepdims=True)))
    return np.concatenate([w, xyz], -1)


def _smallest_three(r: np.ndarray, N: int) -> np.ndarray:  # -> [N, 4] wxyz
    """Version 3: the index of the largest xyzw component in the top 2 bits, the other three as
    sign + 9-bit magnitude in units of sqrt(1/2) / 511, last component in the lowest bits."""
    comp = r.reshape(N, 4).astype(np.int64)
    comp = comp[:, 0] | (comp[:, 1] << 8) | (comp[:, 2] << 16) | (comp[:, 3] << 24)
    largest = comp >> 30
    xyzw = np.zeros((N, 4))
    mask = (1 << 9) - 1
    for i in (3, 2, 1, 0):
        here = largest != i
        value = math.sqrt(0.5) * (comp & mask) / mask
        value = np.where((comp >> 9) & 1, -value, value)
        xyzw[:, i] = np.where(here, value, xyzw[:, i])
        comp = np.where(here, comp >> 10, comp)
    rest = np.sqrt(np.maximum(0.0, 1.0 - (xyzw**2).sum(-1)))
    xyzw[np.arange(N), largest] = rest
    return xyzw[:, [3, 0, 1, 2]]


def save(params: dict[str, torch.Tensor], path: Path) -> None:
    try:
        payload = pack(params)
    except ValueError as e:
        raise file_error(path, str(e)) from None
    write_bytes_atomic(path, gzip.compress(payload, compresslevel=6, mtime=0))


def load(path: Path) -> dict[str, torch.Tensor]:
    """Read an SPZ file; it is decompressed only as far as its header says it extends (no gzip bomb)."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") as f:
            head = f.read(HEADER.size)
            data = head
            if len(head) == HEADER.size:
                _, version, N, degree, *_ = HEADER.unpack_from(head)
                if degree <= 3 and N <= MAX_POINTS:  # else unpack() names the problem
                    data += f.read(sum(payload_sizes(version, N, degree).values()) + 1)
    except FileNotFoundError:
        raise file_error(path, "file not found") from None
    except (OSError, EOFError, zlib.error) as e:
        raise file_error(path, f"not a gzipped SPZ file ({e})") from None
    return unpack(data, path)
