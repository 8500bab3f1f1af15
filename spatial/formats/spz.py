"""Niantic's SPZ format: column-wise fixed-point Gaussian splats, about 6x smaller than PLY on a real capture.

Versions 2 and 3 are one gzip stream holding a 16-byte header and one block per attribute, all points in
each block; version 4 is a 32-byte header, a table of contents and one ZSTD stream per block:

    uint32 magic 0x5053474e ("NGSP") | uint32 version | uint32 N | uint8 sh_degree
    uint8 fractional_bits | uint8 flags (1: antialiased) | uint8 reserved (v4: number of streams)
    v4 only: uint32 offset of the table of contents | 12 bytes reserved;
             table: per stream uint64 compressed size, uint64 uncompressed size
    positions  N x 3 x int24   fixed point, x * 2^fractional_bits  (version 1: float16)
    alphas     N x uint8       sigmoid(opacity) * 255
    colors     N x 3 x uint8   sh0 * 0.15 * 255 + 127.5
    scales     N x 3 x uint8   (log scale + 10) * 16
    rotations  version 2: N x 3 x uint8, xyz of the unit quaternion with w >= 0, * 127.5 + 127.5;
               versions 3 and 4: N x uint32, the "smallest three" components (sign + 9 bits each) and
               the largest one's index (2 bits): at most 0.2 degrees off where version 2 loses up to 10
    sh         N x dim x 3 x uint8   x * 128 + 128; degree 1 kept to 5 bits, higher degrees to 4

We read versions 1-4 and write 3 by default (gzip: every SPZ reader since 2024 opens it) or 4 on request
(`version=4`, `spatial export spz --spz-version 4`: ZSTD, which newer readers such as SuperSplat's need
no more than 3, and which is smaller and faster to decode).

Axes: SPZ is specified in right-up-back (OpenGL-like) axes; our world, like the 3DGS PLY, is
right-down-forward, so points, rotations and SH coefficients are flipped on the way in and out (a
180-degree turn about x), as Niantic's library does when it converts a PLY. That is the default ("rub")
because it is the format's own: a file from Niantic's tools or Scaniverse opens upright. PlayCanvas's
splat-transform (and so SuperSplat) stores SPZ in the PLY's axes instead, without the turn, and the file
does not say which it holds: read and write those with `spz_axes="rdf"` (`--spz-axes rdf` on export,
`--input-spz-axes rdf` for an SPZ input), or they come out turned 180 degrees about x.
"""

from __future__ import annotations

import gzip
import io
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from spatial.errors import file_error
from spatial.files import write_bytes_atomic
from spatial.formats.budget import check_expansion
from spatial.formats.quantize import alpha_logit

if TYPE_CHECKING:
    from spatial.formats import ExportContext


MAGIC = 0x5053474E
HEADER = struct.Struct("<IIIBBBB")
HEADER_V4 = struct.Struct("<IIIBBBBI12x")  # ... number of streams, table-of-contents offset
TOC_ENTRY = struct.Struct("<QQ")
VERSIONS = (1, 2, 3, 4)
WRITE_VERSIONS = (2, 3, 4)
FRACTIONAL_BITS = 12  # 1/4096 of a unit: 0.25 mm when units are metres; range +-2048 units
COLOR_SCALE = 0.15
MAX_POINTS = 10_000_000
# Sign of each SH coefficient (degree 1 to 3, gsplat's order) under (x, y, z) -> (x, -y, -z).
SH_FLIP = np.array([-1, -1, 1, -1, 1, 1, -1, 1, -1, 1, -1, -1, 1, -1, 1], np.float64)
POSITION_FLIP = np.array([1, -1, -1], np.float64)
QUAT_FLIP = np.array([1, 1, -1, -1], np.float64)  # wxyz


def turned(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Parameters turned between our axes and SPZ's (180 degrees about x; its own inverse)."""
    dim = params["shN"].shape[1]
    flips = {"means": POSITION_FLIP, "quats": QUAT_FLIP, "shN": SH_FLIP[:dim, None]}
    return {k: v * torch.as_tensor(flips[k], dtype=v.dtype) if k in flips else v for k, v in params.items()}


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(_round(x), 0, 255).astype(np.uint8)


def _round(x: np.ndarray) -> np.ndarray:
    """Round half away from zero (C's `round`), not numpy's half-to-even."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _quantize_sh(x: np.ndarray, bits: int) -> np.ndarray:
    bucket = 1 << (8 - bits)
    q = _round(x * 128.0 + 128.0)
    return np.clip(np.floor((q + bucket / 2) / bucket) * bucket, 0, 255).astype(np.uint8)


@dataclass
class ExportOptions:
    """The options `spatial export spz` adds to every splat export's."""

    spz_version: Literal[2, 3, 4] = 3
    """SPZ version to write: 3 (gzip, which every SPZ reader opens) or 4 (ZSTD: smaller, newer readers only);
    2 for readers older than 2025 (its rotations are coarser)."""
    spz_axes: Literal["rub", "rdf"] = "rub"
    """Axes to store: rub (right-up-back, the format's own and the default: Niantic's library, Scaniverse and
    viewers built on them open it upright) or rdf (the PLY's right-down-front, as splat-transform and SuperSplat
    store SPZ: pick it for them, or they show the world upside down)."""


AXES = {"rub": True, "rdf": False}  # axes a file stores -> whether reading or writing it turns ours into them


def attribute_blocks(params: dict[str, torch.Tensor], version: int = 3, flip_axes: bool = True) -> tuple[dict, int]:
    """The attribute blocks of an SPZ file, `{name: bytes}` in file order, and the SH degree.
    `flip_axes=False` stores our axes as they are."""
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
    if version == 2:
        rotations = _to_uint8(unit[:, 1:] * np.where(unit[:, :1] < 0, -127.5, 127.5) + 127.5)
    else:
        rotations = _pack_smallest_three(unit)
    sh = shN.reshape(N, dim * 3)  # coefficient-major, RGB innermost
    sh = np.concatenate([_quantize_sh(sh[:, :9], 5), _quantize_sh(sh[:, 9:], 4)], -1) if dim else sh
    degree = {0: 0, 3: 1, 8: 2, 15: 3}[dim]
    named = {"positions": positions, "alphas": alphas, "colors": colors, "scales": scales, "rotations": rotations,
             "sh": sh.astype(np.uint8)}
    return {k: v.tobytes() for k, v in named.items()}, degree


def pack(params: dict[str, torch.Tensor], version: int = 3, flip_axes: bool = True) -> bytes:
    """The bytes of an SPZ file of `version` (2 and 3: before gzip; 4: the whole file)."""
    if version not in WRITE_VERSIONS:
        raise ValueError(f"SPZ versions {', '.join(map(str, WRITE_VERSIONS))} can be written, not {version}")
    data, degree = attribute_blocks(params, version, flip_axes)
    N = params["means"].shape[0]
    if version < 4:
        return HEADER.pack(MAGIC, version, N, degree, FRACTIONAL_BITS, 0, 0) + b"".join(data.values())
    import zstandard

    streams = [v for k, v in data.items() if k != "sh" or degree > 0]
    compressed = [zstandard.ZstdCompressor(level=12).compress(v) for v in streams]
    header = HEADER_V4.pack(MAGIC, 4, N, degree, FRACTIONAL_BITS, 0, len(streams), HEADER_V4.size)
    toc = b"".join(TOC_ENTRY.pack(len(c), len(v)) for c, v in zip(compressed, streams))
    return header + toc + b"".join(compressed)


def _pack_smallest_three(unit: np.ndarray) -> np.ndarray:  # [N, 4] wxyz -> [N] uint32, as bytes [N, 4]
    xyzw = unit[:, [1, 2, 3, 0]]
    largest = np.abs(xyzw).argmax(-1)
    xyzw = xyzw * np.where(xyzw[np.arange(len(xyzw)), largest] < 0, -1.0, 1.0)[:, None]
    mask = (1 << 9) - 1
    comp = largest.astype(np.uint64)
    for i in range(4):
        here = largest != i
        magnitude = np.minimum(_round(np.abs(xyzw[:, i]) / math.sqrt(0.5) * mask), mask).astype(np.uint64)
        value = ((xyzw[:, i] < 0).astype(np.uint64) << np.uint64(9)) | magnitude
        comp = np.where(here, (comp << np.uint64(10)) | value, comp)
    return comp.astype("<u4").view(np.uint8).reshape(-1, 4)


def payload_sizes(version: int, N: int, degree: int) -> dict[str, int]:
    """Bytes of each block after the header."""
    dim = (degree + 1) ** 2 - 1
    return {"positions": N * 3 * (2 if version == 1 else 3), "alphas": N, "colors": N * 3, "scales": N * 3,
            "rotations": N * (4 if version >= 3 else 3), "sh": N * dim * 3}


def unpack(data: bytes, path: Path, flip_axes: bool = True) -> dict[str, torch.Tensor]:
    if len(data) < HEADER.size:
        raise file_error(path, "too short to be an SPZ file")
    magic, version, N, degree, fractional_bits, _flags, _ = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise file_error(path, "not an SPZ file (no NGSP header after gunzip)")
    if version not in VERSIONS:
        raise file_error(path, f"SPZ version {version} is not supported (this reader knows 1-4)")
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
    alpha = blocks["alphas"].astype(np.float64) / 255.0
    colors = (blocks["colors"].astype(np.float64).reshape(N, 3) / 255.0 - 0.5) / COLOR_SCALE
    scales = blocks["scales"].astype(np.float64).reshape(N, 3) / 16.0 - 10.0
    quats = _smallest_three(blocks["rotations"], N) if version >= 3 else _xyz_rotations(blocks["rotations"], N)
    shN = ((blocks["sh"].astype(np.float64) - 128.0) / 128.0).reshape(N, dim, 3)
    if flip_axes:
        means, quats, shN = means * POSITION_FLIP, quats * QUAT_FLIP, shN * SH_FLIP[:dim, None]
    params = {"means": means, "quats": quats, "scales": scales, "opacities": alpha_logit(alpha),
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


def save(params: dict[str, torch.Tensor], path: Path, context: ExportContext | None = None) -> None:
    options = (context.options if context else None) or ExportOptions()
    version = options.spz_version
    try:
        payload = pack(params, version, AXES[options.spz_axes])
    except ValueError as e:
        raise file_error(path, str(e)) from None
    write_bytes_atomic(path, payload if version >= 4 else gzip.compress(payload, compresslevel=6, mtime=0))


def load(path: Path, spz_axes: Literal["rub", "rdf"] = "rub") -> dict[str, torch.Tensor]:
    """Read an SPZ file of any version. Nothing is decompressed past the sizes its header implies (no
    gzip or ZSTD bomb). `spz_axes`: the axes the file stores (the file does not say): "rub", Niantic's (the
    format's own), or "rdf", the PLY's, as splat-transform and SuperSplat write it."""
    if spz_axes not in AXES:
        raise ValueError(f"spz_axes is rub or rdf, not {spz_axes!r}")
    path = Path(path)
    try:
        with open(path, "rb") as f:
            zstd = f.read(4) == MAGIC.to_bytes(4, "little")
        data = _read_zstd(path) if zstd else _read_gzip(path)
    except FileNotFoundError:
        raise file_error(path, "file not found") from None
    except (OSError, EOFError, zlib.error) as e:
        raise file_error(path, f"not a gzipped SPZ file, nor an SPZ 4 one ({e})") from None
    return unpack(data, path, AXES[spz_axes])


def _read_gzip(path: Path) -> bytes:
    with gzip.open(path, "rb") as f:
        head = f.read(HEADER.size)
        data = head
        if len(head) == HEADER.size:
            _, version, N, degree, *_ = HEADER.unpack_from(head)
            if version < 4 and degree <= 3 and N <= MAX_POINTS:  # else unpack() names the problem
                size = sum(payload_sizes(version, N, degree).values())
                check_expansion(path, f"its header's {N:,} points of SH degree {degree}", size, path.stat().st_size)
                data += f.read(size + 1)
    return data


def _read_zstd(path: Path) -> bytes:
    """Version 4: the header and the streams, decompressed and joined as versions 2-3 lay them out."""
    import zstandard

    raw = path.read_bytes()
    if len(raw) < HEADER_V4.size:
        raise file_error(path, "too short to be an SPZ 4 file")
    magic, version, N, degree, bits, flags, streams, toc_at = HEADER_V4.unpack_from(raw)
    if version < 4:
        raise file_error(path, f"SPZ version {version} is gzipped, but this file is not")
    if degree > 3 or N > MAX_POINTS or N == 0:
        return HEADER.pack(magic, version, N, degree, bits, flags, 0)  # unpack() names the problem
    sizes = [v for k, v in payload_sizes(version, N, degree).items() if k != "sh" or degree > 0]
    check_expansion(path, f"its header's {N:,} points of SH degree {degree}", sum(sizes), len(raw))
    if streams != len(sizes) or not HEADER_V4.size <= toc_at <= len(raw) - streams * TOC_ENTRY.size:
        raise file_error(path, f"damaged SPZ 4 header: {streams} streams, table of contents at {toc_at}")
    offset, parts = toc_at + streams * TOC_ENTRY.size, []
    for i, expected in enumerate(sizes):
        compressed, size = TOC_ENTRY.unpack_from(raw, toc_at + i * TOC_ENTRY.size)
        if size != expected or offset + compressed > len(raw):
            raise file_error(path, f"SPZ 4 stream {i} claims {compressed} compressed / {size} bytes where the "
                                   f"header implies {expected} bytes in a {len(raw)}-byte file: the file is damaged")
        try:
            # read through a stream, at most one byte past the size the header implies: a frame header that
            # declares a larger content size would otherwise have its whole claim allocated up front
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw[offset:offset + compressed])) as reader:
                chunks, got = [], 0
                while got <= size and (chunk := reader.read(min(size + 1 - got, 1 << 24))):
                    chunks.append(chunk)
                    got += len(chunk)
                part = b"".join(chunks)
        except zstandard.ZstdError as e:
            raise file_error(path, f"SPZ 4 stream {i} does not decompress ({e})") from None
        if len(part) != size:
            raise file_error(path, f"SPZ 4 stream {i} holds {len(part)} bytes, not {size}")
        parts.append(part)
        offset += compressed
    return HEADER.pack(magic, version, N, degree, bits, flags, 0) + b"".join(parts)
