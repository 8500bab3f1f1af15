"""LPIPS (Zhang et al. 2018), AlexNet variant v0.1 as the papers report it, from weights already on this machine.

Nothing is downloaded. Two files are needed:
    alexnet-owt-7be5be79.pth   torchvision's ImageNet AlexNet, in the torch cache ($TORCH_HOME/hub/checkpoints)
    alex.pth                   the LPIPS linear layers (the `lpips` package ships them in lpips/weights/v0.1/)
They are looked for in $SPATIAL_LPIPS_DIR, then in the torch cache; the linear layers also in an installed
`lpips` package (found without importing it). `find_weights` says which file is missing when one is.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
LINEAR_FILE = "alex.pth"
# AlexNet's five conv layers (torchvision's features.0/3/6/8/10): out channels, kernel, stride, padding.
CONVS = ((0, 64, 11, 4, 2), (3, 192, 5, 1, 2), (6, 384, 3, 1, 1), (8, 256, 3, 1, 1), (10, 256, 3, 1, 1))
SHIFT = (-0.030, -0.088, -0.188)  # LPIPS's scaling layer, on images in -1..1
SCALE = (0.458, 0.448, 0.450)


def _torch_cache() -> Path:
    home = os.environ.get("TORCH_HOME") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch"
    return Path(home) / "hub" / "checkpoints"


def find_weights() -> tuple[Path, Path] | str:
    """(AlexNet file, linear-layer file), or why LPIPS cannot be had here."""
    places = [Path(p) for p in [os.environ.get("SPATIAL_LPIPS_DIR")] if p] + [_torch_cache()]
    spec = importlib.util.find_spec("lpips")
    package = [Path(p) / "weights" / "v0.1" for p in (spec.submodule_search_locations or [])] if spec else []
    alexnet = next((p / ALEXNET_FILE for p in places if (p / ALEXNET_FILE).is_file()), None)
    linear = next((p / LINEAR_FILE for p in places + package if (p / LINEAR_FILE).is_file()), None)
    if alexnet is None or linear is None:
        missing = ALEXNET_FILE if alexnet is None else LINEAR_FILE
        return (f"no LPIPS weights here ({missing} is in none of {', '.join(str(p) for p in places)}); put "
                "them there or set SPATIAL_LPIPS_DIR (they are never downloaded)")
    return alexnet, linear


class LPIPS:
    """`LPIPS(alexnet_file, linear_file)(a, b)`: the distance of images `[H, W, 3]` in 0-1 (lower is closer)."""

    def __init__(self, alexnet_file: Path, linear_file: Path, device: torch.device | str = "cpu"):
        # Weights from files on disk are data, not code: loaded with weights_only, then checked for shape.
        features = torch.load(alexnet_file, map_location="cpu", weights_only=True)
        linear = torch.load(linear_file, map_location="cpu", weights_only=True)
        self.convs, self.lins = [], []
        channels = 3
        for index, (layer, out, kernel, stride, padding) in enumerate(CONVS):
            weight, bias = features[f"features.{layer}.weight"], features[f"features.{layer}.bias"]
            lin = linear[f"lin{index}.model.1.weight"]
            if weight.shape != (out, channels, kernel, kernel) or bias.shape != (out,) or lin.shape != (1, out, 1, 1):
                raise ValueError(f"{alexnet_file} / {linear_file}: not AlexNet LPIPS weights (layer {index})")
            self.convs.append((weight.float().to(device), bias.float().to(device), stride, padding))
            self.lins.append(lin.float().to(device))
            channels = out
        self.shift = torch.tensor(SHIFT, device=device)[None, :, None, None]
        self.scale = torch.tensor(SCALE, device=device)[None, :, None, None]

    def _features(self, image: Tensor) -> list[Tensor]:  # image [1, 3, H, W] scaled -> 5 x [1, C, h, w]
        out, x = [], image
        for index, (weight, bias, stride, padding) in enumerate(self.convs):
            if index in (1, 2):  # the max-pools before conv 2 and conv 3
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(F.conv2d(x, weight, bias, stride, padding))
            out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    @torch.no_grad()
    def __call__(self, a: Tensor, b: Tensor) -> float:
        def prepare(image: Tensor) -> Tensor:  # [H, W, 3] in 0-1 -> [1, 3, H, W] shifted and scaled
            return ((image.permute(2, 0, 1)[None].float().to(self.shift) * 2 - 1) - self.shift) / self.scale

        total = 0.0
        for fa, fb, lin in zip(self._features(prepare(a)), self._features(prepare(b)), self.lins):
            total += float(F.conv2d((fa - fb) ** 2, lin).mean())
        return total
