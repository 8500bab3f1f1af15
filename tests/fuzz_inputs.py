"""What tests/fuzz.py feeds the readers: a valid file (or folder) per reader with the command that reads it, and
the ways it is broken.

Mutations are byte-level (truncations, bit flips, huge counts, inserted bytes), JSON-level (a value anywhere
replaced by a hostile one, a key deleted, bytes that are not UTF-8) and per format: a PLY header's counts and
types, a SOG zip's meta.json and members (counts one off, other zip methods, encrypted, nested JSON), a GLB's JSON
chunk (accessor and bufferView indices, offsets, counts, missing SH), a checkpoint's payload (tensors expanded,
NaN, of another shape or dtype; values of another type). The first cases of each compressed reader are
decompression bombs (`BOMBS`): a file under a megabyte that claims hundreds of megabytes.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

READERS = ("splat-ply", "points-ply", "splat", "spz", "spz4", "compressed-ply", "sog", "sog-meta", "sog-lod", "glb",
           "colmap-bin", "colmap-text", "transforms", "exposures", "blender", "camera-path", "world", "checkpoint",
           "nerf-checkpoint", "resume")
BOMB_MB = 256  # what each bomb claims to unpack to


# ---- valid seeds ------------------------------------------------------------------------------
def make_seeds(root: Path, facade: Path, orbit: Path) -> dict:
    """A valid file (or scene folder) per reader, and the command that reads it; the bombs' own files."""
    import torch

    from spatial.camera_path import orbit_path, save_camera_path
    from spatial.cli import main as spatial
    from spatial.formats import save_splats
    from spatial.io import load_scene
    from spatial.io.colmap import write_colmap
    from spatial.io.exposures import write_exposures
    from spatial.render import rgb_to_sh
    from spatial_viewer.world import World

    g = torch.Generator().manual_seed(0)
    n = 64
    params = {"means": torch.randn(n, 3, generator=g) * 0.5, "quats": torch.randn(n, 4, generator=g),
              "scales": torch.full((n, 3), -3.0), "opacities": torch.zeros(n),
              "sh0": rgb_to_sh(torch.rand(n, 1, 3, generator=g)), "shN": torch.zeros(n, 3, 3)}
    for suffix in ("ply", "splat", "spz", "compressed.ply", "sog", "glb"):
        save_splats(params, root / f"model.{suffix}")
    save_splats(params, root / "model4.spz", spz_version=4)
    (root / "sog").mkdir()
    save_splats(params, root / "sog" / "meta.json")
    (root / "sog" / "bomb.webp").write_bytes(_blank_webp(4096))
    save_splats(params, root / "lod" / "lod-meta.json", lod=2)
    torch.save({"params": params, "step": 1, "config": {"downscale": 1}}, root / "model.pt")

    scene = load_scene(facade)
    for name, binary in (("colmap-bin", True), ("colmap-text", False)):
        folder = root / name
        write_colmap(scene, folder / "sparse" / "0", binary=binary)
        shutil.copytree(facade / "images", folder / "images")
    shutil.copytree(facade, root / "transforms", ignore=shutil.ignore_patterns("sparse", "ground_truth"))
    write_exposures(root / "transforms", {name: {"exposure_time": 0.01 * (1 + i % 3), "iso": 100, "f_number": 2.0}
                                          for i, name in enumerate(scene.image_names)})
    shutil.copytree(orbit, root / "blender", ignore=shutil.ignore_patterns("ground_truth"))

    path = orbit_path(scene.cameras, frames=3, width=24, height=16)
    save_camera_path(path, root / "path.json")
    world = World()
    world.add_layer("layer", params)
    world.save_world(root / "scene.world.json")

    quiet = io.StringIO()
    from contextlib import redirect_stderr, redirect_stdout

    resume = ["--step.steps", "2", "--preset", "cpu", "--downscale", "1", "--device", "cpu"]
    small_nerf = ["--steps", "1", "--preset", "cpu", "--device", "cpu", "--model.field.hash.log2-table-size", "10",
                  "--model.field.hash.levels", "4", "--model.proposal-hash.0.log2-table-size", "8",
                  "--model.proposal-hash.1.log2-table-size", "8", "--model.field.hidden", "16"]
    with redirect_stdout(quiet), redirect_stderr(quiet):
        spatial(["train", "splat", str(orbit), "--out", str(root / "splat-run"), *resume])
        spatial(["train", "nerf", str(orbit), "--out", str(root / "nerf-run"), *small_nerf])
    shutil.copytree(root / "splat-run", root / "splat-run.pristine")

    out = root / "out"
    export_ply = ["export", "ply", "{file}", "--out", f"{out}/x.ply"]
    return {
        "splat-ply": (root / "model.ply", ["export", "splat", "{file}", "--out", f"{out}/x.splat"]),
        "splat": (root / "model.splat", export_ply),
        "spz": (root / "model.spz", export_ply),
        "spz4": (root / "model4.spz", export_ply),
        "compressed-ply": (root / "model.compressed.ply", export_ply),
        "sog": (root / "model.sog", export_ply),
        "sog-meta": (root / "sog" / "meta.json", export_ply),
        "sog-lod": (root / "lod" / "lod-meta.json", export_ply),
        "glb": (root / "model.glb", export_ply),
        "checkpoint": (root / "model.pt", export_ply),
        "points-ply": (root / "transforms" / "sparse_pc.ply", ["scene", "info", "{scene}"]),
        "colmap-bin": (root / "colmap-bin" / "sparse" / "0" / "cameras.bin", ["scene", "info", "{scene}"]),
        "colmap-text": (root / "colmap-text" / "sparse" / "0" / "images.txt", ["scene", "info", "{scene}"]),
        "transforms": (root / "transforms" / "transforms.json", ["scene", "info", "{scene}"]),
        "exposures": (root / "transforms" / "exposures.json", ["scene", "info", "{scene}"]),
        "blender": (root / "blender" / "transforms_train.json", ["scene", "info", "{scene}"]),
        "camera-path": (root / "path.json", ["render", str(root / "model.ply"), "--path", "{file}", "--out",
                                             f"{out}/frames", "--device", "cpu"]),
        "world": (root / "scene.world.json", ["view", "{file}"]),
        "nerf-checkpoint": (root / "nerf-run" / "checkpoints" / "step-000001.pt",
                            ["render", "{file}", "--path", str(root / "path.json"), "--out", f"{out}/nerf-frames",
                             "--device", "cpu"]),
        "resume": (root / "splat-run" / "checkpoints" / "step-000002.pt",
                   ["train", "splat", str(orbit), "--out", str(root / "splat-run"), "--resume",
                    *resume[:1], "3", *resume[2:]]),
    }


def restore_run(file: Path) -> None:
    """Before a resume case: the run folder as the seed left it (a resumed run adds a newer checkpoint)."""
    run = file.parent.parent
    shutil.rmtree(run)
    shutil.copytree(run.with_name(run.name + ".pristine"), run)


def _blank_webp(side: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGBA", (side, side)).save(buffer, "WEBP", lossless=True, exact=True, method=0)
    return buffer.getvalue()  # 34 bytes that decode to side x side x 4


# ---- decompression bombs: each compressed reader's first cases -----------------------------------
def _zeros_compressed(compressor, megabytes: int) -> bytes:
    block = bytes(1 << 20)
    return b"".join(compressor.compress(block) for _ in range(megabytes)) + compressor.flush()


def spz_gzip_bomb(original: bytes) -> bytes:
    """An SPZ 3 header claiming enough SH-3 points for BOMB_MB, then zeros: gzip packs them 1000 to 1."""
    from spatial.formats import spz

    points = (BOMB_MB << 20) // sum(spz.payload_sizes(3, 1, 3).values())
    head = spz.HEADER.pack(spz.MAGIC, 3, points, 3, 12, 0, 0)
    gz = zlib.compressobj(9, zlib.DEFLATED, 31)
    return gz.compress(head) + _zeros_compressed(gz, BOMB_MB)


def spz_zstd_bomb(original: bytes) -> bytes:
    """An SPZ 4 file whose streams claim BOMB_MB of points and are zeros: ZSTD packs them 30,000 to 1."""
    import zstandard

    from spatial.formats import spz

    points = (BOMB_MB << 20) // sum(spz.payload_sizes(4, 1, 3).values())
    sizes = list(spz.payload_sizes(4, points, 3).values())
    streams = [zstandard.ZstdCompressor().compress(bytes(size)) for size in sizes]
    header = spz.HEADER_V4.pack(spz.MAGIC, 4, points, 3, 12, 0, len(sizes), spz.HEADER_V4.size)
    toc = b"".join(spz.TOC_ENTRY.pack(len(c), size) for c, size in zip(streams, sizes))
    return header + toc + b"".join(streams)


def sog_member_bomb(original: bytes) -> bytes:
    """A SOG whose first image is BOMB_MB of deflated zeros."""
    members = _zip_members(original)
    name = next(n for n in members if n.endswith(".webp"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for member, data in members.items():
            if member != name:
                z.writestr(member, data)
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        with z.open(info, "w", force_zip64=True) as f:  # written as it streams: the bomb is never in memory
            for _ in range(BOMB_MB):
                f.write(bytes(1 << 20))
    return buffer.getvalue()


def sog_webp_bomb_meta(original: bytes, image: str) -> dict:
    """meta.json claiming 4096 x 4096 splats, every image the 34-byte blank WebP of that size."""
    meta = json.loads(original)
    meta["count"] = 4096 * 4096
    for section in ("means", "scales", "quats", "sh0", "shN"):
        if section in meta:
            meta[section]["files"] = [image] * len(meta[section]["files"])
    meta.pop("shN", None)
    return meta


def sog_webp_bomb(original: bytes) -> bytes:
    members = _zip_members(original)
    members["bomb.webp"] = _blank_webp(4096)
    members["meta.json"] = json.dumps(sog_webp_bomb_meta(members["meta.json"], "bomb.webp")).encode()
    return _zip(members)


def expanded_tensor_payload(original: bytes) -> bytes:
    """A checkpoint whose first parameter is one stored float expanded (stride 0) to 10^9 elements."""
    import torch

    payload = torch.load(io.BytesIO(original), weights_only=True)
    weights = payload["params"] if "params" in payload else payload["model"]
    first = next(iter(weights))
    weights[first] = torch.zeros(1).expand(10**9)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


BOMBS = {"spz": [spz_gzip_bomb], "spz4": [spz_zstd_bomb], "sog": [sog_member_bomb, sog_webp_bomb],
         "sog-meta": [lambda original: json.dumps(sog_webp_bomb_meta(original, "bomb.webp")).encode()],
         "checkpoint": [expanded_tensor_payload], "nerf-checkpoint": [expanded_tensor_payload],
         "resume": [expanded_tensor_payload]}


# ---- mutations --------------------------------------------------------------------------------
HOSTILE_VALUES = [float("nan"), float("inf"), -float("inf"), -1, 0, 1e30, 10**20, -(10**20), 2**31, 2**63, 1e-30,
                  "x", "", [], {}, None, True, [1, 2, 3], [[0] * 3] * 3, "\udcff", 0.5, 3, 1e-200, 1e300, 10**400]


DEEP = "<nested 100,000 deep>"


def dump_json(data) -> bytes:
    """JSON text of a mutation, NaN and lone surrogates kept, DEEP written as arrays nested 100,000 deep."""
    text = json.dumps(data, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogateescape")
    return text.replace(json.dumps(DEEP).encode(), b"[" * 100_000 + b"]" * 100_000)


def mutate_json(data, rng: random.Random):
    """A structural mutation: one value somewhere replaced by a hostile one, or a key deleted."""
    data = json.loads(json.dumps(data))
    slots = []

    def walk(node):
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for key, value in items:
            slots.append((node, key))
            walk(value)

    walk(data)
    if not slots:
        return rng.choice(HOSTILE_VALUES)
    node, key = rng.choice(slots)
    if isinstance(node, dict) and rng.random() < 0.2:
        del node[key]
    elif rng.random() < 0.05:
        node[key] = DEEP  # dump_json writes it as arrays nested 100,000 deep
    else:
        node[key] = rng.choice(HOSTILE_VALUES)
    return data


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(["truncate", "flip", "flip", "huge", "insert", "zero"])
    data = bytearray(data)
    if kind == "truncate" or len(data) < 8:
        return bytes(data[:rng.randrange(len(data) + 1)])
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind in ("huge", "zero"):
        i = rng.randrange(len(data) - 8)
        value = 0 if kind == "zero" else rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFFFFFFFFFF])
        width = rng.choice([4, 8])
        data[i:i + width] = struct.pack("<Q", value)[:width]
    else:
        i = rng.randrange(len(data))
        data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(data)


def mutate_ply_header(data: bytes, rng: random.Random) -> bytes:
    end = data.index(b"end_header")
    header = data[:end].decode("ascii").split("\n")
    i = next(k for k, line in enumerate(header) if line.startswith("element vertex"))
    header[i] = f"element vertex {rng.choice([0, 1, 10**6, 10**12, 2**31, 2**64 + 5, 123])}"
    if rng.random() < 0.3:
        k = rng.randrange(len(header))
        header[k] = header[k].replace("float", rng.choice(["double", "uchar", "list uchar float", "bogus"]))
        header[k] = header[k].replace("uint", rng.choice(["float", "ushort", "int"]))
    return "\n".join(header).encode("ascii") + data[end:]


def _zip_members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name: z.read(name) for name in z.namelist()}


def _zip(members: dict[str, bytes], methods: dict[str, int] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data, compress_type=(methods or {}).get(name, zipfile.ZIP_STORED))
    return buffer.getvalue()


def _mark_encrypted(data: bytes, name: str) -> bytes:
    """The zip with `name`'s encryption flag set in its local and central headers (its data left plain)."""
    data = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        offset = z.getinfo(name).header_offset
    data[offset + 6] |= 1
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + length] == name.encode():
            data[at + 8] |= 1
        at = data.find(b"PK\x01\x02", at + 4)
    return bytes(data)


def mutate_sog_zip(data: bytes, rng: random.Random) -> bytes:
    members = _zip_members(data)
    meta = json.loads(members["meta.json"])
    kind = rng.choice(["meta", "meta", "count", "method", "encrypted", "deep"])
    methods = {}
    if kind == "meta":
        members["meta.json"] = dump_json(mutate_json(meta, rng))
    elif kind == "count":
        meta["count"] = rng.choice([meta["count"] + 1, meta["count"] - 1, True, 2**28, 0, 1.5, -1])
        members["meta.json"] = json.dumps(meta).encode()
    elif kind == "method":
        methods[rng.choice(list(members))] = rng.choice([zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA, zipfile.ZIP_DEFLATED])
    elif kind == "deep":
        members["meta.json"] = b"[" * 100_000 + b"]" * 100_000
    packed = _zip(members, methods)
    return _mark_encrypted(packed, rng.choice(list(members))) if kind == "encrypted" else packed


def mutate_glb(data: bytes, rng: random.Random) -> bytes:
    length = struct.unpack_from("<I", data, 12)[0]
    gltf = json.loads(data[20:20 + length])
    if rng.random() < 0.5:
        table = rng.choice(["accessors", "bufferViews"])
        entry = rng.choice(gltf[table])
        key = rng.choice(["bufferView", "count", "byteOffset", "componentType", "type"] if table == "accessors"
                         else ["byteOffset", "byteLength", "byteStride", "buffer"])
        entry[key] = rng.choice([-1, 0, 1, 10**9, entry.get(key, 0) + 1 if isinstance(entry.get(key), int) else 2,
                                 "x", None, True, 2**70])
    elif rng.random() < 0.3:
        attributes = gltf["meshes"][0]["primitives"][0]["attributes"]
        del attributes[rng.choice(list(attributes))]
    else:
        gltf = mutate_json(gltf, rng)
    text = dump_json(gltf)
    text += b" " * (-len(text) % 4)
    rest = data[20 + length:]
    return struct.pack("<III", 0x46546C67, 2, 20 + len(text) + len(rest)) + struct.pack("<II", len(text),
                                                                                          0x4E4F534A) + text + rest


def mutate_payload(data: bytes, rng: random.Random) -> bytes:
    """A checkpoint with one value in its payload replaced: tensors expanded, NaN, a row short, of another dtype;
    anything by a hostile JSON value or a list; or a key deleted."""
    import torch

    payload = torch.load(io.BytesIO(data), weights_only=True)
    slots = []

    def walk(node, depth=0):
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for key, value in items:
            slots.append((node, key))
            if depth < 6:
                walk(value, depth + 1)

    walk(payload)
    node, key = rng.choice(slots)
    value = node[key]
    if isinstance(node, dict) and rng.random() < 0.15:
        del node[key]
    elif isinstance(value, torch.Tensor) and value.numel() and rng.random() < 0.8:
        kind = rng.choice(["expand", "nan", "short", "dtype", "scalar", "huge"])
        node[key] = {"expand": lambda: value.reshape(-1)[:1].expand(10**9),
                     "nan": lambda: torch.full_like(value, float("nan")) if value.is_floating_point() else value - 1,
                     "short": lambda: value[:-1] if value.dim() else value[None],
                     "dtype": lambda: value.to(torch.int16 if value.is_floating_point() else torch.float64),
                     "scalar": lambda: value.reshape(-1)[0],
                     "huge": lambda: value * 1e30 if value.is_floating_point() else value + 2**40}[kind]()
    else:
        node[key] = rng.choice([*HOSTILE_VALUES[:20], list(value.values()) if isinstance(value, dict) else {}])
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def mutate(file: Path, original: bytes, rng: random.Random) -> None:
    """Write one mutation of `original` to `file`, by the kind of file it is."""
    name = file.name.lower()
    if name.endswith(".json") and rng.random() < 0.75:
        file.write_bytes(dump_json(mutate_json(json.loads(original), rng)))
    elif name.endswith(".json") and rng.random() < 0.5:
        i = rng.randrange(len(original))
        file.write_bytes(original[:i] + b"\xff\xfe\x80" + original[i:])  # not UTF-8
    elif name.endswith(".ply") and rng.random() < 0.4:
        file.write_bytes(mutate_ply_header(original, rng))
    elif name.endswith(".sog") and rng.random() < 0.6:
        file.write_bytes(mutate_sog_zip(original, rng))
    elif name.endswith(".glb") and rng.random() < 0.6:
        file.write_bytes(mutate_glb(original, rng))
    elif name.endswith(".pt") and rng.random() < 0.7:
        file.write_bytes(mutate_payload(original, rng))
    else:
        file.write_bytes(mutate_bytes(original, rng))
