"""The INRIA 3DGS PLY layout, which SuperSplat, the 3DGS viewers and gsplat's tools read.

    x y z nx ny nz f_dc_0..2 f_rest_0..(3(K-1)-1) opacity scale_0..2 rot_0..3

Values are stored unactivated as the original code does: logit opacity, log scale, an unnormalised
wxyz quaternion. `f_rest` is channel-major (all red coefficients, then green, then blue).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from plyfile import PlyData, PlyElement

from spatial.errors import file_error
from spatial.files import atomic_path
from spatial.formats.quantize import alpha_logit
from spatial.io.ply_header import check_ply_header
from spatial.splats.model import sh_degree_of  # noqa: F401 - re-exported for callers of this module

if TYPE_CHECKING:
    from spatial.formats import ExportContext


REQUIRED = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
            "rot_0", "rot_1", "rot_2", "rot_3"]


def save_ply(params: dict[str, torch.Tensor], path: Path) -> None:
    """Write raw splat parameters (see `spatial.splats.model`) as a binary INRIA PLY, atomically."""
    means = params["means"].detach().cpu().float().numpy()
    N = means.shape[0]
    rest = params["shN"].detach().cpu().float().transpose(1, 2).reshape(N, -1).numpy()  # [N, 3 (K-1)]
    columns = {"x": means[:, 0], "y": means[:, 1], "z": means[:, 2],
               "nx": np.zeros(N), "ny": np.zeros(N), "nz": np.zeros(N)}
    dc = params["sh0"].detach().cpu().float().reshape(N, 3).numpy()
    columns.update({f"f_dc_{i}": dc[:, i] for i in range(3)})
    columns.update({f"f_rest_{i}": rest[:, i] for i in range(rest.shape[1])})
    columns["opacity"] = params["opacities"].detach().cpu().float().numpy()
    scales, quats = params["scales"].detach().cpu().float().numpy(), params["quats"].detach().cpu().float().numpy()
    columns.update({f"scale_{i}": scales[:, i] for i in range(3)})
    columns.update({f"rot_{i}": quats[:, i] for i in range(4)})
    vertex = np.empty(N, dtype=[(name, "<f4") for name in columns])
    for name, values in columns.items():
        vertex[name] = values
    with atomic_path(path) as tmp:
        PlyData([PlyElement.describe(vertex, "vertex")], byte_order="<").write(str(tmp))


def load_ply(path: Path) -> dict[str, torch.Tensor]:
    """Raw splat parameters from an INRIA-layout PLY (ours or another tool's)."""
    path = Path(path)
    check_ply_header(path)
    from spatial.formats import compressed_ply

    if compressed_ply.is_compressed_ply(path):  # a SuperSplat "compressed PLY" saved under a plain .ply name
        return compressed_ply.load(path)
    try:
        vertex = PlyData.read(str(path))["vertex"]
    except Exception as e:  # noqa: BLE001 - plyfile raises many kinds for a damaged file
        raise file_error(path, f"not a readable PLY with a vertex element ({type(e).__name__}: "
                               f"{str(e)[:200]})") from None
    if len(vertex.data) == 0:
        raise file_error(path, "holds no Gaussians (0 vertices)")
    dtype = vertex.data.dtype
    names = set(dtype.names)
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        raise file_error(path, f"not a Gaussian-splat PLY: missing {', '.join(missing)} "
                               "(expected the 3DGS layout: x y z f_dc_* f_rest_* opacity scale_* rot_*)")
    rest_names = [n for n in names if n.startswith("f_rest_")]
    wrong = [n for n in [*REQUIRED, *rest_names] if dtype[n].shape != () or dtype[n].kind not in "fiu"
             or (n.startswith("f_rest_") and not n[7:].isdigit())]
    if wrong:
        raise file_error(path, f"not a Gaussian-splat PLY: {', '.join(sorted(wrong)[:5])} must be plain numbers")
    rest_names.sort(key=lambda n: int(n[7:]))
    if len(rest_names) % 3 or int(np.sqrt(len(rest_names) // 3 + 1)) ** 2 != len(rest_names) // 3 + 1:
        raise file_error(path, f"{len(rest_names)} f_rest fields do not form a full SH degree (0, 9, 24 or 45)")

    def col(*fields: str) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):  # doubles beyond float32 become inf: refused below
            return np.stack([np.asarray(vertex[f], np.float32) for f in fields], -1)

    N = len(vertex.data)
    rest = col(*rest_names) if rest_names else np.zeros((N, 0), np.float32)
    opacities = col("opacity")[:, 0]
    # an infinite logit is a fully opaque (or transparent) splat, as splat-transform decodes an 8-bit alpha of 255
    infinite = np.isinf(opacities)
    opacities[infinite] = alpha_logit(np.where(opacities[infinite] > 0, 1.0, 0.0))
    params = {
        "means": col("x", "y", "z"),
        "quats": col("rot_0", "rot_1", "rot_2", "rot_3"),
        "scales": col("scale_0", "scale_1", "scale_2"),
        "opacities": opacities,
        "sh0": col("f_dc_0", "f_dc_1", "f_dc_2")[:, None, :],
        "shN": rest.reshape(N, 3, -1).transpose(0, 2, 1),
    }
    out = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in params.items()}
    if not all(torch.isfinite(v).all() for v in out.values()):
        raise file_error(path, "holds NaN or infinite values")
    return out


def save(params: dict[str, torch.Tensor], path: Path, context: ExportContext | None = None) -> None:
    save_ply(params, path)
load = load_ply

