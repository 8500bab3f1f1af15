"""Frames from a video (PyAV; no ffmpeg binary): upright, spread over time, sharp ones chosen.

Two passes over the file: the first measures the sharpness (variance of the Laplacian of a small
grey copy) of every frame; the second decodes again and writes the chosen frames. Frames much
blurrier than the video's typical frame are dropped, then the timeline is cut into one window per
wanted frame and the sharpest frame of each window is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from spatial.errors import SpatialError

BLUR_RATIO = 0.35  # a frame less sharp than this fraction of the median frame counts as blurred


@dataclass
class ExtractedFrames:
    names: list[str]
    read: int  # frames decoded
    blurred: list[int] = field(default_factory=list)  # indices of frames dropped for blur
    kept: list[int] = field(default_factory=list)  # indices of frames written
    rotation: int = 0  # degrees the frames were turned to be upright
    fps: float = 0.0


def sharpness(gray: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian."""
    g = gray.astype(np.float32)
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
    return float(lap.var())


def _open(path: Path):
    import av

    if not path.is_file():
        raise SpatialError(f"{path}: video not found")
    if path.stat().st_size == 0:
        raise SpatialError(f"{path}: the file is empty")
    try:
        container = av.open(str(path))
    except (av.error.InvalidDataError, av.error.FFmpegError, OSError) as e:
        reason = getattr(e, "strerror", None) or str(e)  # FFmpeg's message, without its internal errno
        raise SpatialError(f"{path}: not a readable video ({reason})") from None
    if not container.streams.video:
        container.close()
        raise SpatialError(f"{path}: the file has no video stream")
    return container


def _upright(frame, max_size: int) -> np.ndarray:
    pixels = frame.to_ndarray(format="rgb24")
    turns = round((frame.rotation or 0) / 90) % 4
    if turns:
        pixels = np.ascontiguousarray(np.rot90(pixels, turns))
    if max_size and max(pixels.shape[:2]) > max_size:
        image = Image.fromarray(pixels)
        scale = max_size / max(image.size)
        pixels = np.asarray(image.resize((round(image.width * scale), round(image.height * scale)),
                                         Image.Resampling.LANCZOS))
    return pixels


def extract_frames(path: Path, target: Path, count: int, max_size: int = 0, progress=None) -> ExtractedFrames:
    """Write up to `count` sharp, evenly spread, upright frames of `path` into `target`."""
    import av

    container = _open(path)
    scores, rotation = [], 0
    try:
        stream = container.streams.video[0]
        total = stream.frames or 0
        fps = float(stream.average_rate or 0)
        for frame in container.decode(video=0):
            rotation = frame.rotation or 0
            small = frame.reformat(width=max(frame.width // 4, 8), height=max(frame.height // 4, 8), format="gray")
            scores.append(sharpness(small.to_ndarray()))
            if progress is not None:
                progress(len(scores), max(total, len(scores)))
    except av.error.FFmpegError as e:
        if not scores:
            raise SpatialError(f"{path}: the video cannot be decoded ({e})") from None
    finally:
        container.close()
    if not scores:
        raise SpatialError(f"{path}: the video has no frames")

    scores_np = np.array(scores)
    blurred = np.nonzero(scores_np < BLUR_RATIO * np.median(scores_np))[0].tolist()
    sharp = np.setdiff1d(np.arange(len(scores)), blurred)
    windows = np.array_split(sharp, min(count, len(sharp)))
    chosen = sorted(int(w[np.argmax(scores_np[w])]) for w in windows if len(w))

    target.mkdir(parents=True, exist_ok=True)
    names, wanted = [], set(chosen)
    container = _open(path)
    try:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                name = f"frame_{index:06d}.jpg"
                Image.fromarray(_upright(frame, max_size)).save(target / name, quality=95)
                names.append(name)
            if index >= chosen[-1]:
                break
    finally:
        container.close()
    return ExtractedFrames(names, len(scores), blurred, chosen, rotation, fps)
