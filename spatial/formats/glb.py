"""glTF binary (`.glb`) with `KHR_gaussian_splatting`: splats that glTF tools and three.js-class viewers load.

We implement the extension's revision that splat-transform 3.7.0 writes and reads (attributes named
`KHR_gaussian_splatting:NAME`, the extension object's kernel / colorSpace / sortingMethod / projection), not
its SPZ-compressed variant: one primitive of `mode` 0 (points) with

    POSITION                                   float VEC3
    COLOR_0                                    normalised ubyte VEC4: 0.5 + C0 * sh0, and opacity
    KHR_gaussian_splatting:ROTATION            float VEC4, xyzw unit quaternion
    KHR_gaussian_splatting:SCALE               float VEC3, linear (not log) scale
    KHR_gaussian_splatting:OPACITY             float SCALAR, 0-1
    KHR_gaussian_splatting:SH_DEGREE_l_COEF_c  float VEC3 (RGB), degree 0 to 3

and the extension object {kernel: ellipse, colorSpace: srgb_rec709_display, sortingMethod: cameraDistance,
projection: perspective}. glTF is y-up, so the world is turned 180 degrees about z on the way out (our y
points down, as in the PLY) and back on the way in, exactly as splat-transform turns a PLY. Lossless apart from
float32 rounding of that turn and of exp(log scale).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from spatial.errors import file_error
from spatial.files import write_bytes_atomic
from spatial.io.json_util import parse_json
from spatial.render.sh import C0

if TYPE_CHECKING:
    from spatial.formats import ExportContext


MAGIC, JSON_CHUNK, BIN_CHUNK = 0x46546C67, 0x4E4F534A, 0x004E4942
FLOAT, UBYTE, USHORT = 5126, 5121, 5123
EXT = "KHR_gaussian_splatting"
COMPONENTS = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}
MAX_JSON = 64 << 20
TURN = torch.diag(torch.tensor([-1.0, -1.0, 1.0, 1.0], device="cpu"))  # 180 degrees about z: our axes <-> glTF's


def _turned(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    from spatial.splats.transform import transform_splats

    return transform_splats({k: v.detach().cpu().double() for k, v in params.items()}, TURN.double())


def encode(params: dict[str, torch.Tensor]) -> bytes:
    p = {k: v.numpy() for k, v in _turned(params).items()}
    N, dim = p["means"].shape[0], p["shN"].shape[1]
    alpha = 1 / (1 + np.exp(-p["opacities"]))
    rgba = np.concatenate([p["sh0"].reshape(N, 3) * C0 + 0.5, alpha[:, None]], -1)
    quats = p["quats"] / np.linalg.norm(p["quats"], axis=-1, keepdims=True)
    columns = [("POSITION", p["means"], FLOAT, "VEC3"),
               ("COLOR_0", np.clip(np.round(rgba * 255), 0, 255), UBYTE, "VEC4"),
               (f"{EXT}:ROTATION", quats[:, [1, 2, 3, 0]], FLOAT, "VEC4"),
               (f"{EXT}:SCALE", np.exp(p["scales"]), FLOAT, "VEC3"),
               (f"{EXT}:OPACITY", alpha, FLOAT, "SCALAR"),
               (f"{EXT}:SH_DEGREE_0_COEF_0", p["sh0"].reshape(N, 3), FLOAT, "VEC3")]
    k = 0
    for degree in range(1, 4):
        for c in range(2 * degree + 1):
            if k < dim:
                columns.append((f"{EXT}:SH_DEGREE_{degree}_COEF_{c}", p["shN"][:, k], FLOAT, "VEC3"))
            k += 1
    binary, views, accessors = bytearray(), [], []
    for i, (name, values, kind, shape) in enumerate(columns):
        data = values.astype("<f4" if kind == FLOAT else "u1").tobytes()
        views.append({"buffer": 0, "byteOffset": len(binary), "byteLength": len(data), "target": 34962})
        accessor = {"bufferView": i, "componentType": kind, "count": N, "type": shape}
        if kind == UBYTE:
            accessor["normalized"] = True
        if name == "POSITION":
            accessor["min"] = values.astype(np.float32).min(0).tolist()
            accessor["max"] = values.astype(np.float32).max(0).tolist()
        accessors.append(accessor)
        binary += data + b"\0" * (-len(data) % 4)
    gltf = {"asset": {"version": "2.0", "generator": "spatial"}, "extensionsUsed": [EXT],
            "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
            "buffers": [{"byteLength": len(binary)}], "bufferViews": views, "accessors": accessors,
            "meshes": [{"primitives": [{"attributes": {c[0]: i for i, c in enumerate(columns)}, "mode": 0,
                                        "extensions": {EXT: {"kernel": "ellipse", "colorSpace": "srgb_rec709_display",
                                                             "sortingMethod": "cameraDistance",
                                                             "projection": "perspective"}}}]}]}
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return (struct.pack("<III", MAGIC, 2, total) + struct.pack("<II", len(text), JSON_CHUNK) + text
            + struct.pack("<II", len(binary), BIN_CHUNK) + bytes(binary))


def save(params: dict[str, torch.Tensor], path: Path, context: ExportContext | None = None) -> None:
    write_bytes_atomic(path, encode(params))


def load(path: Path) -> dict[str, torch.Tensor]:
    with np.errstate(all="ignore"):  # a damaged file's values overflow or turn NaN: refused, never warned about
        return _load(path)


def _load(path: Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise file_error(path, "file not found") from None
    if len(raw) < 20 or struct.unpack_from("<I", raw)[0] != MAGIC:
        raise file_error(path, "not a glTF binary (.glb) file")
    json_length, kind = struct.unpack_from("<II", raw, 12)
    if kind != JSON_CHUNK or json_length > min(MAX_JSON, len(raw) - 20):
        raise file_error(path, "damaged glTF binary: its JSON chunk does not fit in the file")
    gltf = parse_json(raw[20:20 + json_length], path, "its glTF JSON")
    at = 20 + json_length
    binary = b""
    if at + 8 <= len(raw):
        length, kind = struct.unpack_from("<II", raw, at)
        if kind == BIN_CHUNK and length <= len(raw) - at - 8:
            binary = raw[at + 8:at + 8 + length]
    meshes = gltf.get("meshes")
    primitives = [p for mesh in (meshes if isinstance(meshes, list) else []) if isinstance(mesh, dict)
                  for p in (mesh.get("primitives") if isinstance(mesh.get("primitives"), list) else [])
                  if isinstance(p, dict) and isinstance(p.get("extensions"), dict) and EXT in p["extensions"]]
    if not primitives or not isinstance(primitives[0].get("attributes"), dict):
        raise file_error(path, f"has no {EXT} primitive: it is a glTF file, but not of Gaussian splats")
    attributes = primitives[0]["attributes"]

    def entry(table: str, index, what: str) -> dict:
        """gltf[table][index], the index checked (a negative one would take another entry, from the end)."""
        entries = gltf.get(table)
        if not isinstance(index, int) or isinstance(index, bool) or not isinstance(entries, list) \
                or not 0 <= index < len(entries) or not isinstance(entries[index], dict):
            raise file_error(path, f"{what} names {table} entry {index!r:.20}, which the file does not have")
        return entries[index]

    def whole(value, what: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise file_error(path, f"{what} must be a whole number of at least 0, got {value!r:.20}")
        return value

    def column(name: str, shape: str) -> np.ndarray:
        if name not in attributes:
            raise file_error(path, f"its {EXT} primitive has no {name} attribute")
        accessor = entry("accessors", attributes[name], name)
        view = entry("bufferViews", accessor.get("bufferView"), f"{name}'s accessor")
        kind, kind_name, stride = accessor.get("componentType"), accessor.get("type"), view.get("byteStride")
        dtype = {FLOAT: "<f4", UBYTE: "u1", USHORT: "<u2"}.get(kind) if type(kind) is int else None
        width = COMPONENTS.get(kind_name) if isinstance(kind_name, str) else None
        count = whole(accessor.get("count"), f"{name}'s count")
        if dtype is None or kind_name != shape or count == 0 or \
                stride not in (None, width * np.dtype(dtype).itemsize) or view.get("buffer", 0) != 0:
            raise file_error(path, f"{name} must be a tightly packed {shape} of floats (or normalised integers)")
        need = count * width * np.dtype(dtype).itemsize
        start = whole(view.get("byteOffset", 0), f"{name}'s buffer view byteOffset")
        length = whole(view.get("byteLength"), f"{name}'s buffer view byteLength")
        inside = whole(accessor.get("byteOffset", 0), f"{name}'s accessor byteOffset")
        if start + length > len(binary):
            raise file_error(path, f"{name}'s buffer view reaches past the end of the binary chunk: the file is "
                                   "truncated")
        if inside + need > length:
            raise file_error(path, f"{name}'s {count:,} values reach past the end of their buffer view")
        values = np.frombuffer(binary, dtype, count * width, start + inside).reshape(count, width).astype(np.float64)
        return values if kind == FLOAT else values / np.iinfo(dtype).max

    means = column("POSITION", "VEC3")
    N = len(means)
    rotation, scale = column(f"{EXT}:ROTATION", "VEC4"), column(f"{EXT}:SCALE", "VEC3")
    if f"{EXT}:OPACITY" in attributes:
        alpha = column(f"{EXT}:OPACITY", "SCALAR")[:, 0]
    else:
        alpha = column("COLOR_0", "VEC4")[:, 3]
    if f"{EXT}:SH_DEGREE_0_COEF_0" in attributes:
        sh0 = column(f"{EXT}:SH_DEGREE_0_COEF_0", "VEC3")
    else:
        sh0 = (column("COLOR_0", "VEC4")[:, :3] - 0.5) / C0
    rest, degree = [], 0
    for d in range(1, 4):
        names = [f"{EXT}:SH_DEGREE_{d}_COEF_{c}" for c in range(2 * d + 1)]
        present = [n in attributes for n in names]
        if any(present) and (not all(present) or degree != d - 1):
            missing = [n for n in names if n not in attributes] or [f"{EXT}:SH_DEGREE_{d - 1}_COEF_0"]
            raise file_error(path, f"has SH degree {d} coefficients but no {missing[0]}: every coefficient of "
                                   "every degree up to the highest must be there")
        if all(present):
            rest += [column(n, "VEC3") for n in names]
            degree = d
    columns = [means, rotation, scale, alpha[:, None], sh0, *rest]
    if any(len(c) != N for c in columns):
        raise file_error(path, f"its {EXT} attributes have different counts")
    outside = ~((alpha >= 0) & (alpha <= 1))
    if outside.any():
        raise file_error(path, f"an opacity is {alpha[outside][0]:.4g}; opacities lie between 0 and 1")
    if not (scale > 0).all():
        raise file_error(path, f"a scale is {scale[~(scale > 0)][0]:.4g}; scales are above 0 (linear, not log)")
    alpha = np.clip(alpha, 1e-6, 1 - 1e-6)
    params = {"means": means, "quats": rotation[:, [3, 0, 1, 2]], "scales": np.log(scale),
              "opacities": np.log(alpha / (1 - alpha)), "sh0": sh0[:, None, :],
              "shN": np.stack(rest, 1) if rest else np.zeros((N, 0, 3))}
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in params.items()}
    if not all(torch.isfinite(v).all() for v in tensors.values()):
        raise file_error(path, "holds NaN or infinite values")
    return {k: v.float() for k, v in _turned(tensors).items()}
