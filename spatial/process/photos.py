"""Importing photos: upright copies, skipped files reported, the EXIF focal length as a prior, and each photo's
exposure settings (kept in the scene's exposures.json, see spatial/io/exposures.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from spatial.errors import SpatialError
from spatial.images import IMAGE_EXTENSIONS, read_image

EXIF_IFD = 0x8769
FOCAL_35MM = 0xA405  # FocalLengthIn35mmFilm
EXPOSURE_TIME, F_NUMBER, ISO = 0x829A, 0x829D, 0x8827  # ExposureTime (s), FNumber, PhotographicSensitivity


@dataclass
class ImportedPhotos:
    names: list[str]  # files written to the import folder, sorted
    skipped: dict[str, str] = field(default_factory=dict)  # file -> why it was left out
    focal_px: float | None = None  # shared focal length prior in pixels, from EXIF, if all agree
    size: tuple[int, int] | None = None  # (width, height) when all photos share one
    exposures: dict[str, dict] = field(default_factory=dict)  # imported name -> exposure_settings(), when known


def focal_from_exif(path: Path, width: int, height: int) -> float | None:
    """Focal length in pixels from the 35 mm-equivalent EXIF tag (36 mm film width), or None."""
    try:
        with Image.open(path) as im:
            f35 = im.getexif().get_ifd(EXIF_IFD).get(FOCAL_35MM)
    except OSError:
        return None
    if not f35:
        return None
    return float(f35) / 36.0 * max(width, height)


def exposure_settings(path: Path) -> dict | None:
    """`{"exposure_time": s, "iso": ..., "f_number": ...}` from the photo's EXIF, or None when a value is missing or
    not a positive number. A phone's fixed aperture may go unrecorded: then `f_number` is None."""
    try:
        with Image.open(path) as im:
            tags = im.getexif().get_ifd(EXIF_IFD)
    except (OSError, SyntaxError, ValueError):  # an EXIF block Pillow cannot parse is no EXIF at all
        return None
    values = {key: _positive(tags.get(tag)) for key, tag in
              (("exposure_time", EXPOSURE_TIME), ("iso", ISO), ("f_number", F_NUMBER))}
    if values["exposure_time"] is None or values["iso"] is None:
        return None
    return values


def _positive(value) -> float | None:
    if isinstance(value, tuple) and value:  # PhotographicSensitivity may be a list of values: the first counts
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):  # None, bytes, or a rational with a zero denominator
        return None
    return number if 0 < number < 1e9 else None  # NaN fails both comparisons


def import_photos(folder: Path, target: Path, max_size: int = 0) -> ImportedPhotos:
    """Write upright copies of every readable photo in `folder` to `target` (longest side <= max_size)."""
    if not folder.is_dir():
        raise SpatialError(f"{folder}: not a folder of photos")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise SpatialError(f"{folder}: the folder is empty")
    target.mkdir(parents=True, exist_ok=True)
    result = ImportedPhotos(names=[])
    focals, sizes = set(), set()
    for path in files:
        if path.suffix not in IMAGE_EXTENSIONS:
            result.skipped[path.name] = f"not an image file ({path.suffix or 'no extension'})"
            continue
        try:
            pixels = read_image(path)
        except SpatialError as e:
            result.skipped[path.name] = str(e).split(": ", 1)[-1]
            continue
        image = Image.fromarray(pixels[..., :3])
        if max_size and max(image.size) > max_size:
            scale = max_size / max(image.size)
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
        name = path.stem + (".png" if path.suffix.lower() == ".png" else ".jpg")
        image.save(target / name, quality=95)
        result.names.append(name)
        sizes.add(image.size)
        focals.add(focal_from_exif(path, *image.size))
        if (settings := exposure_settings(path)) is not None:
            result.exposures[name] = settings
    if len(result.names) < 3:
        raise SpatialError(f"{folder}: only {len(result.names)} usable photos (at least 3 are needed; "
                           f"skipped: {_listing(result.skipped)})")
    if len(sizes) == 1:
        result.size = sizes.pop()
        if len(focals) == 1 and None not in focals:
            result.focal_px = focals.pop()
    return result


def _listing(skipped: dict[str, str]) -> str:
    return "; ".join(f"{k} ({v})" for k, v in skipped.items()) or "none"
