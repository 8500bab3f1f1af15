"""PlayCanvas's SOG (version 2): splats as lossless WebP images plus `meta.json`, 15-20x smaller than PLY, the
format PlayCanvas and SuperSplat publish to the web.

`scene.sog` is a zip of `meta.json` and the images; a path ending in `meta.json` is the same thing unbundled
(the images beside it). Every image is W x H RGBA with one splat per pixel in Morton order
(W = ceil(sqrt(N) / 4) * 4, H = ceil(N / W / 4) * 4):

    means_l, means_u   16-bit x y z (low and high bytes) of sign(x) log(1 + |x|), in meta's mins..maxs
    quats              the three smaller wxyz components * sqrt(2) in 0-255, alpha 252 + the largest's index
    scales             log scales as indices into a 256-entry codebook (meta.scales.codebook)
    sh0                sh0 as indices into a 256-entry codebook, alpha = opacity * 255
    shN_labels         16-bit index (R, G) into a palette of SH vectors, whose coefficients are indices into a
    shN_centroids      256-entry codebook; 64 palette entries a row, one pixel per coefficient (RGB)

Axes are the PLY's (ours). The codebooks are 1-D k-means (256 entries, started half at the quantiles and
half evenly spaced, so the tails keep entries); the SH palette is k-means on at most 65,536 splats, of
`--sog-palette` entries (default: splat-transform's rule, N / 1024 rounded down to a power of two, times 1024,
but at most 4,096 here: a million splats of SH degree 3 take about 40 s to write on a 2-core CPU, where
splat-transform's CPU k-means took 23 s for 5,000). Pillow writes the WebP images (lossless, `exact` so that
fully transparent pixels keep their colour). Round-trip error: positions 1/65535 of the log-range, log scales
and colours to the codebook's spacing, rotation about 1 degree, opacity 1/510; higher SH to the palette (the
lossy part).
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from spatial.errors import file_error
from spatial.files import write_bytes_atomic
from spatial.formats.budget import check_expansion
from spatial.formats.morton import morton_order
from spatial.formats.quantize import alpha_logit, codebook_1d, kmeans
from spatial.io.json_util import parse_json
from spatial.io.paths import check_inside

if TYPE_CHECKING:
    from spatial.formats import ExportContext


MAX_SPLATS = 16383 * 16383
MAX_MEMBER = 1 << 30  # no image in a SOG is larger than this (bytes): a bigger one is a zip bomb
MAX_META = 16 << 20  # bytes of meta.json: its codebooks take a few kilobytes
SQRT2 = math.sqrt(2)
OTHERS = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])  # the components stored, by the largest one


@dataclass
class ExportOptions:
    """The options `spatial export sog` adds to every splat export's."""

    sog_palette: int = 0
    """Entries of the SH palette (0: splat-transform's rule, at most 4096); more is closer and slower."""
    lod: int = 0
    """Levels of detail: a streamed SOG (FOLDER/lod-meta.json and a SOG per chunk, as PlayCanvas streams it) with
    this many levels, each with half the Gaussians of the one above, merged; 0: one SOG."""


def _log(x):
    return np.sign(x) * np.log1p(np.abs(x))


def _webp(rgba: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, "WEBP", lossless=True, exact=True, quality=50, method=4)
    return buffer.getvalue()


def encode(params: dict[str, torch.Tensor], sog_palette: int = 0, ordered: bool = False) -> dict[str, bytes]:
    """The files of a SOG: `{"meta.json": ..., "means_l.webp": ..., ...}`; the splats in Morton order, or in the
    order given (`ordered`: a streamed SOG's unit, whose chunks are ranges of it)."""
    p = {k: v.detach().cpu().double().numpy() for k, v in params.items()}
    N, dim = p["means"].shape[0], p["shN"].shape[1]
    if N > MAX_SPLATS:
        raise ValueError(f"SOG holds at most {MAX_SPLATS:,} splats; this world has {N:,}")
    if not ordered:
        order = morton_order(p["means"])
        p = {k: v[order] for k, v in p.items()}
    W = math.ceil(math.sqrt(N) / 4) * 4
    H = math.ceil(N / W / 4) * 4

    def image(*channels: np.ndarray) -> bytes:  # channels [N] each (0-255); alpha 255 unless given
        rgba = np.zeros((W * H, 4), np.uint8)  # padding past N stays 0, so a count too high meets quats alpha 0
        rgba[:N, 3] = 255
        for i, c in enumerate(channels):
            rgba[:N, i] = c
        return _webp(rgba.reshape(H, W, 4))

    logged = _log(p["means"])
    lo, hi = logged.min(0), logged.max(0)
    q16 = np.clip(np.round((logged - lo) / np.where(hi > lo, hi - lo, 1.0) * 65535), 0, 65535).astype(np.uint32)
    files = {"means_l.webp": image(*(q16 & 255).T), "means_u.webp": image(*(q16 >> 8).T)}

    quats = p["quats"] / np.linalg.norm(p["quats"], axis=-1, keepdims=True)
    largest = np.abs(quats).argmax(-1)
    quats *= np.where(quats[np.arange(N), largest] < 0, -SQRT2, SQRT2)[:, None]
    three = np.take_along_axis(quats, OTHERS[largest], -1)
    files["quats.webp"] = image(*np.clip(np.round(255 * (three * 0.5 + 0.5)), 0, 255).T, 252 + largest)

    scale_book, scale_labels = codebook_1d(p["scales"])
    files["scales.webp"] = image(*scale_labels.T)
    colour_book, colour_labels = codebook_1d(p["sh0"].reshape(N, 3))
    alpha = np.clip(np.round(255 / (1 + np.exp(-p["opacities"]))), 0, 255)
    files["sh0.webp"] = image(*colour_labels.T, alpha)
    meta = {"version": 2, "asset": {"generator": "spatial"}, "count": N,
            "means": {"mins": lo.tolist(), "maxs": hi.tolist(), "files": ["means_l.webp", "means_u.webp"]},
            "scales": {"codebook": scale_book.tolist(), "files": ["scales.webp"]},
            "quats": {"files": ["quats.webp"]},
            "sh0": {"codebook": colour_book.tolist(), "files": ["sh0.webp"]}}
    if dim:
        rest = p["shN"].transpose(0, 2, 1).reshape(N, 3 * dim)  # f_rest order: channel-major
        k = sog_palette or min(4096, int(min(64, 2 ** math.floor(math.log2(N / 1024))) * 1024))
        centres, labels = kmeans(rest, k)
        k = len(centres)
        book, centre_labels = codebook_1d(centres)  # [k, 3 dim]
        grid = np.zeros((math.ceil(k / 64) * 64, dim, 4), np.uint8)
        grid[:k, :, :3] = centre_labels.reshape(k, 3, dim).transpose(0, 2, 1)
        grid[..., 3] = 255
        files["shN_centroids.webp"] = _webp(grid.reshape(-1, 64 * dim, 4))
        files["shN_labels.webp"] = image(labels & 255, labels >> 8)
        meta["shN"] = {"count": k, "bands": {3: 1, 8: 2, 15: 3}[dim], "codebook": book.tolist(),
                       "files": ["shN_centroids.webp", "shN_labels.webp"]}
    return {"meta.json": json.dumps(meta).encode(), **files}


def save(params: dict[str, torch.Tensor], path: Path, context: ExportContext | None = None) -> None:
    """A bundled `.sog`, or the unbundled files beside a path named `meta.json`."""
    path = Path(path)
    options = (context.options if context else None) or ExportOptions()
    from spatial.formats import sog_lod

    if options.lod < 0 or options.lod > sog_lod.MAX_LEVELS:
        raise file_error(path, f"--lod {options.lod}: give 0 (one SOG) to {sog_lod.MAX_LEVELS} levels of detail")
    if options.lod > 1 or sog_lod.is_lod_path(path):
        if not sog_lod.is_lod_path(path):
            raise file_error(path, "levels of detail are written as a folder: name it FOLDER/lod-meta.json")
        cameras = context.training_cameras() if context else None
        save_levels(sog_lod.levels_of(params, options.lod if options.lod > 1 else 4, cameras), path,
                    options.sog_palette)
        return
    try:
        files = encode(params, options.sog_palette)
    except ValueError as e:
        raise file_error(path, str(e)) from None
    if path.name.lower().endswith("meta.json"):
        for name, data in files.items():
            write_bytes_atomic(path if name == "meta.json" else path.parent / name, data)
        return
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:  # the images are compressed already
        for name, data in files.items():
            z.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)
    write_bytes_atomic(path, buffer.getvalue())


def save_levels(levels: list[dict[str, torch.Tensor]], path: Path, sog_palette: int = 0, chunk: int | None = None
                ) -> None:
    """Write `levels` (finest first) as a streamed SOG: `path` (lod-meta.json) and a SOG folder per unit beside it
    (the layout: spatial/formats/sog_lod.py)."""
    from spatial.formats import sog_lod

    meta, units = sog_lod.plan(levels, path, chunk or sog_lod.CHUNK)
    for level, level_units in enumerate(units):
        for i, rows in enumerate(level_units):
            unit = {k: v.detach().cpu()[torch.from_numpy(rows)] for k, v in levels[level].items()}
            for name, data in encode(unit, sog_palette, ordered=True).items():
                write_bytes_atomic(path.parent / f"{level}_{i}" / name, data)
    write_bytes_atomic(path, json.dumps(meta).encode())


def load_level(path: Path, level: int = 0) -> dict[str, torch.Tensor]:
    """One level of a streamed SOG (`lod-meta.json`; 0: the finest): its units, each checked against the tree."""
    from spatial.formats import sog_lod

    parts = []
    for unit, count in sog_lod.units_of(Path(path), level):
        part = load(unit)
        if part["means"].shape[0] != count:
            raise file_error(path, f"its tree places {count} Gaussians of level {level} in "
                                   f"{unit.relative_to(Path(path).parent).as_posix()}, which holds "
                                   f"{part['means'].shape[0]}")
        parts.append(part)
    if len({p["shN"].shape[1] for p in parts}) > 1:
        raise file_error(path, f"the units of level {level} differ in their SH degree")
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def load(path: Path) -> dict[str, torch.Tensor]:
    with np.errstate(all="ignore"):  # a damaged file's values overflow or turn NaN: refused, never warned about
        return _load(path)


def _load(path: Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if path.name.lower().endswith("lod-meta.json"):  # a streamed SOG: its finest level
        return load_level(path)
    if path.name.lower().endswith("meta.json"):
        folder = path.parent

        def read(name: str) -> bytes:
            member = folder / name
            check_inside(folder, member, path, f"its image {name!r}")  # a link out is refused (spatial/io/paths.py)
            if not member.is_file():
                raise file_error(path, f"names {name}, which is not a file beside it")
            if member.stat().st_size > MAX_MEMBER:
                raise file_error(path, f"{name} is implausibly large for a SOG image")
            return member.read_bytes()

        if path.stat().st_size > MAX_META:
            raise file_error(path, f"is {path.stat().st_size:,} bytes: implausible for a SOG's meta.json")
        meta = read_meta(path.read_bytes(), path)
        stored = sum((folder / n).stat().st_size for n in image_names(meta, path) if (folder / n).is_file())
        return decode(meta, read, path, stored)
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise file_error(path, f"not a SOG file (a zip of meta.json and WebP images): {e}") from None
    with z:
        members = {i.filename: i for i in z.infolist()}

        def read_member(name: str) -> bytes:
            info = members.get(name)
            if info is None:
                raise file_error(path, f"has no {name}, which its meta.json names")
            if info.flag_bits & 1:
                raise file_error(path, f"{name} is encrypted; a SOG's members are plain")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise file_error(path, f"{name} is packed with zip method {info.compress_type}; a SOG's members "
                                       "are stored or deflated")
            limit = MAX_META if name == "meta.json" else MAX_MEMBER
            if info.file_size > limit:
                raise file_error(path, f"{name} is {info.file_size:,} bytes unpacked: implausible for a SOG")
            check_expansion(path, name, info.file_size, info.compress_size)
            try:
                return z.read(name)
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError, EOFError) as e:
                raise file_error(path, f"{name} cannot be unpacked ({e})") from None

        return decode(read_meta(read_member("meta.json"), path), read_member, path, path.stat().st_size)


def read_meta(data: bytes, path: Path) -> dict:
    """A SOG's meta.json, parsed with a depth limit and its version checked."""
    meta = parse_json(data, path, "its meta.json" if path.name.lower() != "meta.json" else "")
    if meta.get("version") != 2:
        raise file_error(path, f"SOG version {meta.get('version')!r:.20} is not supported (this reader knows version "
                               "2; re-save the file with splat-transform or SuperSplat)")
    return meta


def image_names(meta: dict, path: Path) -> list[str]:
    """The image files meta.json names, each a plain file name (no folders, nothing hidden)."""
    names = []
    for section in ("means", "scales", "quats", "sh0", "shN"):
        files = meta.get(section, {}).get("files") if isinstance(meta.get(section), dict) else None
        if section not in meta or (section == "shN" and files is None):
            continue
        if not isinstance(files, list) or not all(isinstance(f, str) and f and "/" not in f and "\\" not in f
                                                  and not f.startswith(".") and "\x00" not in f for f in files):
            raise file_error(path, f"meta.json's {section}.files must name its images (plain file names)")
        names += files
    return names


def decode(meta: dict, read, path: Path, stored: int) -> dict[str, torch.Tensor]:
    """Parameters from a SOG's meta.json and a `read(name) -> bytes` for its images, every field checked;
    `stored`: the bytes the images take in the file, which bound what they may unpack to."""
    N = meta.get("count")
    if not isinstance(N, int) or isinstance(N, bool) or not 0 < N <= MAX_SPLATS:
        raise file_error(path, f"meta.json's count must be a whole number of splats from 1 to {MAX_SPLATS:,}")
    check_expansion(path, f"its {N:,} splats", 4 * N * len(image_names(meta, path)), stored)

    def numbers(section: str, key: str, length: int) -> np.ndarray:
        value = meta.get(section, {}).get(key) if isinstance(meta.get(section), dict) else None
        if not isinstance(value, list) or len(value) != length or \
                not all(isinstance(v, (int, float)) and math.isfinite(v) for v in value):
            raise file_error(path, f"meta.json's {section}.{key} must be {length} finite numbers")
        return np.asarray(value, np.float64)

    def texture(section: str, index: int, width: int | None = None, height: int | None = None) -> np.ndarray:
        files = meta.get(section, {}).get("files") if isinstance(meta.get(section), dict) else None
        if not isinstance(files, list) or len(files) <= index or not isinstance(files[index], str) or \
                "/" in files[index] or "\\" in files[index] or files[index].startswith("."):
            raise file_error(path, f"meta.json's {section}.files must name its images (plain file names)")
        name = files[index]
        return read_webp(read(name), path, name, N if width is None else None, width, height)

    lo, hi = numbers("means", "mins", 3), numbers("means", "maxs", 3)
    low, up = texture("means", 0), texture("means", 1)
    q16 = low[:, :3].astype(np.float64) + 256.0 * up[:, :3]
    logged = lo + (hi - lo) * q16 / 65535
    means = np.sign(logged) * np.expm1(np.abs(logged))
    q = texture("quats", 0).astype(np.float64)
    tag = q[:, 3].astype(np.int64)
    if ((tag < 252) | (tag > 255)).any():
        raise file_error(path, "quats.webp's alpha must be 252-255 (which component is the largest)")
    three = (q[:, :3] / 255 * 2 - 1) / SQRT2
    quats = np.zeros((N, 4))
    largest = tag - 252
    np.put_along_axis(quats, OTHERS[largest], three, -1)
    quats[np.arange(N), largest] = np.sqrt(np.maximum(0.0, 1 - (three**2).sum(-1)))
    scales = numbers("scales", "codebook", 256)[texture("scales", 0)[:, :3]]
    c = texture("sh0", 0)
    sh0 = numbers("sh0", "codebook", 256)[c[:, :3]]
    alpha = c[:, 3] / 255.0
    shN = np.zeros((N, 0, 3))
    if "shN" in meta:
        sh = meta["shN"] if isinstance(meta["shN"], dict) else {}
        bands, k = sh.get("bands"), sh.get("count")
        if bands not in (1, 2, 3) or isinstance(bands, bool) or not isinstance(k, int) or isinstance(k, bool) \
                or not 0 < k <= 65536:
            raise file_error(path, "meta.json's shN needs bands 1-3 and a palette count of 1 to 65,536")
        dim = (bands + 1) ** 2 - 1
        book = numbers("shN", "codebook", 256)
        grid = texture("shN", 0, 64 * dim, math.ceil(k / 64))  # [rows * 64 * dim, 4]
        labels = texture("shN", 1).astype(np.int64)
        index = labels[:, 0] + 256 * labels[:, 1]
        if int(index.max()) >= k:
            raise file_error(path, f"shN_labels.webp points past the palette's {k} entries")
        palette = book[grid[:, :3]].reshape(-1, dim, 3)[:k]  # [k, dim, 3]
        shN = palette[index]
    params = {"means": means, "quats": quats, "scales": scales, "opacities": alpha_logit(alpha),
              "sh0": sh0[:, None, :], "shN": shN}
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in params.items()}


def read_webp(data: bytes, path: Path, name: str, count: int | None, width: int | None = None,
              height: int | None = None) -> np.ndarray:
    """A WebP image's RGBA pixels `[pixels, 4]` (the first `count`), its size checked before it is decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=["WEBP"]) as im:
            w, h = im.size
            if count is not None and not count <= w * h <= 4 * (count + 16 * math.isqrt(count) + 256):
                raise file_error(path, f"{name} is {w} x {h}: the wrong size for {count:,} splats")
            if width is not None and (w, h) != (width, height):
                raise file_error(path, f"{name} is {w} x {h} where the palette needs {width} x {height}")
            pixels = np.asarray(im.convert("RGBA")).reshape(-1, 4)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise file_error(path, f"{name} is not a readable WebP image ({e})") from None
    return pixels if count is None else pixels[:count]
