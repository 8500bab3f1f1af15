"""Per-image appearance: an affine colour transform per training image, learned beside the splats.

Phones change exposure and white balance from one photo to the next. Without help, training bakes those changes
into the splats as view-dependent colour and floaters. Here each training image gets its own 3x3 colour matrix
and offset, applied to its render before the loss (as in the exposure compensation of Kerbl et al. 2024,
hierarchical 3DGS). The transforms are centred on every use, so their mean over the training images is the
identity. The splats then hold the captures' average colours, which the viewer and exports show. A held-out photo
is rendered with none of them (the world's own colours), or with `held_out="nearest"` with the transform of the
training photo taken nearest it (see TrainerBase.nearest_training_view). The transforms are training state only:
never exported.

A photo's exposure can also be known rather than learned: the camera records its exposure time, ISO and aperture
(spatial/io/exposures.py). With `exposure` on, each render is scaled by its photo's exposure relative to the training
photos' geometric mean, as a gain in linear light (gamma 2.2) before the learned transform, which is then left the
residual (white balance, tone). The gain is known for held-out photos too, so they are rendered at their own
exposure, as Block-NeRF conditions on exposure. The splats hold the training photos' mean exposure.

A camera does not record light as that gain says: its tone curve and its metering of the moment answer a longer
exposure with less than the gain, and the learned transforms show it. A held-out photo rendered in the world's own
colours (`held_out="mean"`) at its exposure is therefore given the part of the transforms that follows exposure:
per entry of the 3x4 transform, the least-squares line over the training photos' log exposure (`following`), which
is the identity where the exposures do not vary. Nothing of the held-out photo but its EXIF is used. Measured with
the `capture` preset at 1/4 size (scripts/bench_real_captures.py's split, held-out PSNR): sceaux_castle (its
training photos' transforms fall by about 0.5 on the diagonal per unit of log exposure) 14.50 and 14.71 dB with the
bare gain for seeds 0 and 1, 14.74 and 15.03 with the line (the `cpu` preset 14.91 and 14.52; rendered at the mean
exposure 14.88 and 15.13); monstree 21.32 dB with the gain, 21.33 with the line (at the mean exposure 20.35).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor


@dataclass
class AppearanceConfig:
    per_image: bool = False
    """Learn an affine colour transform per training image (exposure, white balance), left out of exports."""
    lr: float = 5e-3
    """Adam learning rate of the transforms."""
    start: int = 0
    """First step at which the transforms are used and learned."""
    exposure: bool = False
    """Render each photo (held-out ones too) at its recorded exposure (EXIF exposure time x ISO / f-number^2,
    relative to the training photos'), where the scene has exposures.json; spatial process writes it."""
    held_out: Literal["mean", "nearest"] = "mean"
    """With per-image appearance, the appearance a held-out photo is rendered and scored with: the training photos'
    mean (the world's own colours, which the viewer and exports show), or that learned for the training photo taken
    nearest it (by camera position: in the same light, with the camera's settings of that moment)."""


class ImageAppearance(torch.nn.Module):
    """`count` affine colour transforms `[count, 3, 4]`, initialised to the identity; row i belongs to the i-th
    training image of the trainer that made it (not to a scene index)."""

    def __init__(self, count: int, device: torch.device | str):
        super().__init__()
        eye = torch.eye(3, 4, device=device)
        self.transforms = torch.nn.Parameter(eye.expand(count, 3, 4).clone())  # [count, 3, 4]

    def centred(self) -> Tensor:
        """The transforms with their mean moved to the identity `[count, 3, 4]`: the splats' colours are the
        training images' average, and a transform shared by all images cannot drift into them."""
        t = self.transforms
        return t - t.mean(0, keepdim=True) + torch.eye(3, 4, device=t.device, dtype=t.dtype)

    def forward(self, image: Tensor, row: int) -> Tensor:  # image [H, W, 3] -> [H, W, 3]
        return apply(image, self.centred()[row])

    def following(self, x: Tensor, at: Tensor) -> Tensor:
        """The transform `[3, 4]` at `at` (0-dim) of the line the transforms follow along `x [count]`, a value each
        training image records (its log exposure): per entry, the least-squares line of the transforms over x,
        which passes through the identity (their mean) at x's mean. The identity where x does not vary."""
        t = self.centred()  # [count, 3, 4]
        eye = torch.eye(3, 4, device=t.device, dtype=t.dtype)
        mean = x.to(t).mean()
        x = x.to(t) - mean  # [count]
        slope = (x[:, None, None] * (t - eye)).sum(0) / (x * x).sum().clamp(min=1e-12)  # [3, 4]
        return eye + slope * (at.to(t) - mean)


def apply(image: Tensor, transform: Tensor) -> Tensor:
    """`image [H, W, 3]` through an affine colour `transform [3, 4]`."""
    return image @ transform[:, :3].T + transform[:, 3]
