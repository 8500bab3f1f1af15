"""Writing rendered frames: an H.264 mp4 through PyAV (no ffmpeg binary), or a folder of PNGs.

Both are written under a temporary name and renamed when complete, so an interrupted render never
leaves a truncated video or a half-filled frames folder that looks finished.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from spatial.errors import SpatialError
from spatial.files import atomic_path
from spatial.spherical_video import VideoLabel, add_spherical_metadata

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")
LABELLED_SUFFIXES = (".mp4", ".mov")  # where stereo and spherical labels are written (ISO boxes)
FLAT = VideoLabel()  # a plain video: no label
MAX_VIDEO_SIDE = 16384  # pixels: libx264 refuses a wider or taller frame (measured: 16,384 encodes, 16,386 does not)


def write_video(frames: Iterable[np.ndarray], path: Path, fps: float = 30.0, crf: int = 18,
                label: VideoLabel = FLAT) -> int:
    """Encode `[H, W, 3]` uint8 frames as H.264 (yuv420p); returns the number of frames written.

    A `label` other than a flat mono one (stereo eyes, a panorama) is written into the file for players
    (spatial/spherical_video.py); MP4 and MOV carry it, Matroska's own fields for it are not written, so an .mkv
    with one is refused.

    H.264 in yuv420p needs even sizes, so odd widths or heights are padded by one pixel (edge copied).
    `crf` is x264's quality: 0 lossless, 18 visually lossless, 23 its default.
    """
    import av

    if not label.flat and Path(path).suffix.lower() not in LABELLED_SUFFIXES:
        raise SpatialError(f"{path}: stereo and 360-degree videos are labelled for players in "
                           f"{' and '.join(LABELLED_SUFFIXES)} files; choose one of those")
    count = 0
    with atomic_path(Path(path)) as tmp:
        with av.open(str(tmp), "w", format=Path(path).suffix.lstrip(".").replace("mkv", "matroska")) as container:
            stream = None
            for frame in frames:
                if stream is None:
                    H, W = frame.shape[:2]
                    if max(W + W % 2, H + H % 2) > MAX_VIDEO_SIDE:
                        raise SpatialError(f"{path}: H.264 video frames are at most {MAX_VIDEO_SIDE:,} pixels a side, "
                                           f"not {W}x{H}; render a smaller size, or frames to a folder")
                    stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
                    stream.width, stream.height = W + W % 2, H + H % 2
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": str(crf)}
                padded = np.pad(frame, ((0, H % 2), (0, W % 2), (0, 0)), mode="edge")
                try:
                    container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(padded),
                                                                            format="rgb24")))
                except av.error.FFmpegError as e:
                    raise SpatialError(f"{path}: the H.264 encoder refused the {W}x{H} frames ({e})") from None
                count += 1
            if stream is None:
                raise SpatialError(f"{path}: no frames to write")
            container.mux(stream.encode())
        if not label.flat:
            add_spherical_metadata(tmp, label)
    return count


def write_frames(frames: Iterable[np.ndarray], folder: Path) -> int:
    """Write `frame_00000.png`, ... into `folder` (created, or replaced once all frames are written)."""
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    count = 0
    try:
        tmp.mkdir(parents=True, exist_ok=False)
        for frame in frames:
            Image.fromarray(frame).save(tmp / f"frame_{count:05d}.png")
            count += 1
        if folder.exists():
            if any(p for p in folder.iterdir() if not p.name.startswith("frame_")):
                raise SpatialError(f"{folder}: exists and holds other files; choose an empty or new folder")
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except OSError as e:
        raise SpatialError(f"{folder}: cannot write ({e.strerror or e})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return count


def read_video(path: Path) -> np.ndarray:
    """All frames of a video as `[F, H, W, 3]` uint8 (for checks and tests)."""
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
