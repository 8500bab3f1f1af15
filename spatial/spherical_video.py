"""Labelling an MP4 or MOV as stereo or 360° video, the way players read it: Google's Spherical Video V2 boxes.

    add_spherical_metadata("pano.mp4", VideoLabel(projection="equirect"))
    add_spherical_metadata("sbs.mp4", VideoLabel(stereo="left-right"))          # a flat stereo video
    add_spherical_metadata("vr180.mp4", VideoLabel("left-right", "equirect", bounds=(0, 0, 0.25, 0.25)))

Two boxes go at the end of the video track's sample entry (`avc1`), as the specification places them:
- `st3d` (stereoscopic 3D video box): how the frame holds the eyes: 0 mono, 1 top-bottom, 2 left-right;
- `sv3d` (spherical video box) for a panorama: `svhd` (who wrote it), `proj` holding `prhd` (the pose: yaw, pitch,
  roll, all 0 here) and `equi` (equirectangular, with the share of a full panorama cropped off the top, bottom,
  left and right as 0.32 fixed point: VR180 crops a quarter of the width off each side).
YouTube, headsets' players and FFmpeg (`ffprobe` lists them as "Stereo 3D" and "Spherical Mapping" side data)
read them. The boxes are added to the `moov` box, which our writer (PyAV's MP4 and MOV muxers) puts after the
media data, so no sample offset moves: the file is rewritten from `moov` on.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

STEREO_MODES = {"mono": 0, "top-bottom": 1, "left-right": 2}
CONTAINERS = (b"moov", b"trak", b"mdia", b"minf", b"stbl")  # boxes made of boxes on the way to the sample entry


@dataclass(frozen=True)
class VideoLabel:
    """How a video's frames are to be shown: which eye is where, and on what surface."""

    stereo: str = "mono"  # mono, top-bottom (left eye on top), left-right (left eye left)
    projection: str = "rectilinear"  # rectilinear (a flat picture) or equirect (longitude across, latitude down)
    bounds: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # share of a full panorama cut off: t, b, l, r

    @property
    def flat(self) -> bool:  # nothing to say: a plain video
        return self.stereo == "mono" and self.projection == "rectilinear"


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full_box(kind: bytes, payload: bytes, version: int = 0, flags: int = 0) -> bytes:
    return box(kind, struct.pack(">I", version << 24 | flags) + payload)


def spherical_boxes(label: VideoLabel) -> bytes:
    """The `st3d` box, and for an equirectangular projection the `sv3d` box, as bytes."""
    out = full_box(b"st3d", bytes([STEREO_MODES[label.stereo]]))
    if label.projection == "equirect":
        fixed = [min(round(b * 2**32), 2**32 - 1) for b in label.bounds]  # top, bottom, left, right
        pose = full_box(b"prhd", struct.pack(">iii", 0, 0, 0))  # yaw, pitch, roll
        proj = box(b"proj", pose + full_box(b"equi", struct.pack(">4I", *fixed)))
        out += box(b"sv3d", full_box(b"svhd", b"spatial\0") + proj)
    elif label.projection != "rectilinear":
        raise ValueError(f"unknown projection {label.projection!r}")
    return out


def _children(data: bytes, start: int, end: int):
    """(kind, start, size) of each box in `data[start:end]`."""
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        if size < 8 or at + size > end:  # 64-bit and to-the-end sizes never occur in a moov that we wrote
            raise ValueError(f"unexpected box size {size} for {kind!r} at {at}")
        yield kind, at, size
        at += size


def add_spherical_metadata(path: Path, label: VideoLabel) -> None:
    """Add the stereo (and for a panorama, spherical) boxes to the video track of the MP4/MOV at `path`."""
    path = Path(path)
    with open(path, "r+b") as f:
        top, at = [], 0
        size_of_file = f.seek(0, 2)
        while at < size_of_file:
            f.seek(at)
            size, kind = struct.unpack(">I4s", f.read(8))
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0]
            if size < 8:
                raise ValueError(f"{path}: unexpected top-level box size {size}")
            top.append((kind, at, size))
            at += size
        kind, moov_at, moov_size = top[-1]
        if kind != b"moov":
            raise ValueError(f"{path}: its moov box is not last ({[k for k, _, _ in top]}); cannot add metadata")
        f.seek(moov_at)
        moov = bytearray(f.read(moov_size))
        extra = spherical_boxes(label)
        chain = _video_sample_entry(moov)  # offsets in moov of moov, trak, mdia, minf, stbl, stsd, avc1
        entry = chain[-1]
        end = entry + struct.unpack(">I", moov[entry:entry + 4])[0]
        moov[end:end] = extra
        for at in chain:  # every box on the way grows by the inserted bytes
            moov[at:at + 4] = struct.pack(">I", struct.unpack(">I", moov[at:at + 4])[0] + len(extra))
        f.seek(moov_at)
        f.write(moov)
        f.truncate()


def _video_sample_entry(moov: bytes) -> list[int]:
    """Offsets of the boxes from `moov` down to the video track's first sample entry."""
    for kind, trak, size in _children(moov, 8, len(moov)):
        if kind != b"trak":
            continue
        chain, at, end = [0, trak], trak, trak + size
        for want in CONTAINERS[2:]:
            found = [(s, n) for k, s, n in _children(moov, at + 8, end) if k == want]
            if not found:
                break
            at, end = found[0][0], found[0][0] + found[0][1]
            chain.append(at)
            if want == b"mdia":
                handlers = [s for k, s, _ in _children(moov, at + 8, end) if k == b"hdlr"]
                if not handlers or moov[handlers[0] + 16:handlers[0] + 20] != b"vide":
                    break
        else:
            stsd = [s for k, s, _ in _children(moov, at + 8, end) if k == b"stsd"]
            if stsd:
                entry = stsd[0] + 16  # the stsd full box header and its entry count
                return chain + [stsd[0], entry]
    raise ValueError("no video track with a sample description found")
