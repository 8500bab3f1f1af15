"""Image files: reading with EXIF orientation applied, sizes, and the `images_N` downscale cache.

Every image the project reads goes through `read_image`, so a photo a phone stored sideways (EXIF
orientation 5-8) is upright everywhere, and an unreadable file is reported by name.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from spatial.errors import file_error

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".JPG", ".JPEG", ".PNG", ".webp", ".bmp", ".tif", ".tiff")
EXIF_ORIENTATION = 0x0112


def _open(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except FileNotFoundError:
        raise file_error(path, "image not found") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombWarning, ValueError) as e:  # ValueError: NUL
        raise file_error(path, f"not a readable image ({e})") from None


def exif_orientation(path: Path) -> int:
    """EXIF orientation tag (1 = upright; 6 = rotate 90 degrees clockwise to view)."""
    with _open(path) as im:
        return int(im.getexif().get(EXIF_ORIENTATION, 1))


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) as displayed, i.e. after EXIF orientation; reads the header only."""
    with _open(path) as im:
        w, h = im.size
        orientation = int(im.getexif().get(EXIF_ORIENTATION, 1))
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def read_image(path: Path) -> np.ndarray:
    """Pixels `[H, W, 3]` or `[H, W, 4]` (RGBA kept) uint8, upright per EXIF orientation."""
    with _open(path) as im:
        try:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
            elif im.mode in ("I;16", "I;16B", "I"):
                im = Image.fromarray((np.asarray(im, np.float64) / 257.0).clip(0, 255).astype(np.uint8))
                im = im.convert("RGB")
            else:
                im = im.convert("RGB")
            return np.asarray(im).copy()
        except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt data past the header
            raise file_error(path, f"image data is corrupt ({e})") from None


def composite(rgba: np.ndarray, background: tuple[float, float, float]) -> np.ndarray:
    """RGBA uint8 `[H, W, 4]` over a background colour (0-1) to RGB float32 `[H, W, 3]` in 0-1."""
    rgb = rgba[..., :3].astype(np.float32) / 255.0
    if rgba.shape[-1] == 3:
        return rgb
    alpha = rgba[..., 3:].astype(np.float32) / 255.0
    return rgb * alpha + np.asarray(background, np.float32) * (1 - alpha)


def find_image(path: Path) -> Path:
    """`path` itself, or with the first image extension that exists (Blender writes none)."""
    try:
        if path.is_file():
            return path
        for ext in IMAGE_EXTENSIONS:
            candidate = path.with_name(path.name + ext)
            if candidate.is_file():
                return candidate
    except (OSError, ValueError) as e:  # a name too long, or with a NUL byte, from a hostile camera file
        raise file_error(path, f"not a usable image path ({e})") from None
    raise file_error(path, "image not found (also tried the usual image extensions)")


def downscaled_image(source: Path, target: Path, size: tuple[int, int]) -> Path:
    """`target` holding `source` resized to `size` (width, height), written when stale or missing.

    The cached copy is upright (EXIF orientation applied) and carries no orientation tag.
    Written to a temporary name then renamed, so an interrupted run leaves no half file.
    """
    if Path(target).resolve() == Path(source).resolve():
        raise ValueError(f"{target}: a downscaled copy cannot replace its own source")
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        with _open(target) as im:
            if im.size == size:
                return target
    pixels = Image.fromarray(read_image(source))
    pixels = pixels.resize(size, Image.Resampling.LANCZOS if _shrinks(pixels.size, size) else Image.Resampling.BICUBIC)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fmt = Image.registered_extensions().get(target.suffix.lower(), "PNG")
    pixels.save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    os.replace(tmp, target)
    return target


def _shrinks(old: tuple[int, int], new: tuple[int, int]) -> bool:
    return new[0] < old[0] and new[1] < old[1]
