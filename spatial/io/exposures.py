"""`exposures.json` beside a scene's cameras: each photo's exposure settings, as its camera's EXIF recorded them.

    {"images": {"IMG_1025.jpg": {"exposure_time": 0.0167, "iso": 20, "f_number": 1.8}, ...}}

`spatial process images` writes it (the imported copies carry no EXIF). A phone sets its exposure per photo, so the
same surface is brighter in a photo taken with a longer exposure or a higher ISO. The relative exposure of a photo
is exposure_time x iso / f_number^2 (f_number left out when a photo lacks it: a phone's aperture is
fixed), and a trainer can
scale its renders by it (see AppearanceConfig.exposure in spatial/splats/appearance.py), held-out views too, since
the settings come with the photo rather than from its pixels.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from spatial.errors import SpatialError, file_error
from spatial.files import write_json_atomic

FILE = "exposures.json"
KEYS = ("exposure_time", "iso", "f_number")
RANGES = {"exposure_time": (1e-6, 3600.0), "iso": (1.0, 1e7), "f_number": (0.5, 256.0)}  # what cameras can record


def write_exposures(folder: Path, settings: dict[str, dict]) -> None:
    """Write `settings` (image name -> exposure_settings()) to `folder/exposures.json`."""
    try:
        write_json_atomic(folder / FILE, {"images": {name: settings[name] for name in sorted(settings)}})
    except OSError as e:
        raise SpatialError(f"{folder / FILE}: cannot write ({e.strerror})") from None


def read_exposures(folder: Path, names: list[str]) -> tuple[Tensor | None, str]:
    """(relative exposure `[C]` float64 of each image in `names`, "") from `folder/exposures.json`; (None, why)
    when the file is absent or does not cover every image. A malformed file is an error naming it."""
    from spatial.io.json_util import read_json

    path = Path(folder) / FILE
    if not path.is_file():
        return None, ""
    images = read_json(path).get("images")
    if not isinstance(images, dict):
        raise file_error(path, 'expected {"images": {image name: {"exposure_time": ..., "iso": ..., '
                               '"f_number": ...}}}')
    entries = []
    for name in names:
        entry = images.get(name)
        if entry is None:
            return None, f"{path} has no exposure for {name}: photos are rendered at one exposure"
        if not isinstance(entry, dict):
            raise file_error(path, f"the exposure of {name[:200]!r}: not an object of exposure_time, iso and "
                                   "f_number")
        for key in KEYS:
            if not _valid(entry.get(key), key):
                lo, hi = RANGES[key]
                raise file_error(path, f"the exposure of {name[:200]!r}: {key} is {entry.get(key)!r:.40}; expected a "
                                       f"number from {lo:g} to {hi:g}{' (or null)' if key == 'f_number' else ''}")
        entries.append(entry)
    apertures = all(e.get("f_number") is not None for e in entries)  # else all as one fixed aperture
    values = [e["exposure_time"] * e["iso"] / (e["f_number"] ** 2 if apertures else 1.0) for e in entries]
    return torch.tensor(values, dtype=torch.float64, device="cpu"), ""


def _valid(value, key: str) -> bool:
    if value is None:
        return key == "f_number"
    lo, hi = RANGES[key]
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and lo <= value <= hi


GAMMA = 2.2
"""Photos are gamma-encoded: an exposure k times longer scales their values by k^(1/2.2) (sRGB's mean slope)."""


def exposure_gains(exposures: Tensor, train_ids: list[int]) -> Tensor:
    """The gain `[C]` float32 on each photo's render: `(exposure / mean) ** (1 / GAMMA)`, where `exposures [C]` are
    the photos' relative exposures and the mean is the training photos' geometric mean (so the model holds it)."""
    log = torch.log(exposures.double())
    return torch.exp((log - log[train_ids].mean()) / GAMMA).float()
