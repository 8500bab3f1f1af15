"""The peers' own tools for interop tests, and how close two splat sets are.

`nerfstudio(...)` runs tests/interop/nerfstudio_probe.py with nerfstudio 1.1.5 in a virtual environment of its own,
built by scripts/nerfstudio_env.sh (scripts/test.sh builds it in CI, or with SPATIAL_NERFSTUDIO=1).

`splat_transform(...)` runs PlayCanvas's splat-transform (the converter SuperSplat is built on), pinned in
tests/interop/package-lock.json and installed by scripts/node_tools.sh (scripts/test.sh runs it). Without
Node the tests that need it skip, except under CI (SPATIAL_INTEROP_REQUIRED=1), where they fail.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from spatial.render.sh import C0

ROOT = Path(__file__).resolve().parents[1]


def node_tool(name: str) -> Path:
    """The path of an installed interop tool's executable; skips (fails under CI) when it is missing."""
    folder = os.environ.get("SPATIAL_NODE_TOOLS") or subprocess.run(
        [str(ROOT / "scripts" / "node_tools.sh")], capture_output=True, text=True).stdout.strip()
    tool = Path(folder) / "node_modules" / ".bin" / name if folder else None
    if tool is None or not tool.exists():
        message = f"{name} is not installed: scripts/node_tools.sh installs it (needs Node.js and npm)"
        if os.environ.get("SPATIAL_INTEROP_REQUIRED"):
            pytest.fail(message)
        pytest.skip(message)
    return tool


def nerfstudio_python() -> Path:
    """The python of nerfstudio's own virtual environment (scripts/nerfstudio_env.sh builds it); skips (fails under
    CI) when it is not built."""
    found = os.environ.get("SPATIAL_NERFSTUDIO_PYTHON") or subprocess.run(
        [str(ROOT / "scripts" / "nerfstudio_env.sh")], capture_output=True, text=True).stdout.strip()
    if not found or not Path(found).exists():
        message = ("nerfstudio's environment is not built: SPATIAL_NERFSTUDIO=1 scripts/test.sh (or "
                   "scripts/nerfstudio_env.sh --build) builds it once, about 8 GB")
        if os.environ.get("SPATIAL_INTEROP_REQUIRED"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(found)


def nerfstudio(*args: str | Path, timeout: float = 600) -> str:
    """Run tests/interop/nerfstudio_probe.py in nerfstudio's environment; its output, or a failure naming why."""
    command = [str(nerfstudio_python()), str(ROOT / "tests" / "interop" / "nerfstudio_probe.py"), *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def splat_transform(*args: str | Path, timeout: float = 600) -> str:
    """Run splat-transform on the CPU (`-g cpu`), overwriting outputs; its output, or a failure naming why."""
    command = [str(node_tool("splat-transform")), "-g", "cpu", "-w", "--no-tty", *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def matched(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor], k: int = 16) -> dict[str, torch.Tensor]:
    """`theirs` reordered to `ours` (for formats that sort splats in Morton order): a one-to-one matching of least
    total distance over centre, colour, opacity and scale, among each splat's `k` nearest (trained worlds have
    splats that share a centre, cloned by densification, so the nearest centre alone is ambiguous)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching
    from scipy.spatial import cKDTree

    N = ours["means"].shape[0]
    assert theirs["means"].shape[0] == N, "the splat counts differ"

    def features(p):
        extent = float((ours["means"].amax(0) - ours["means"].amin(0)).max())
        return torch.cat([p["means"] / extent * 100, p["sh0"].reshape(-1, 3), torch.sigmoid(p["opacities"])[:, None],
                          p["scales"] / 10], -1).double().numpy()

    distance, index = cKDTree(features(theirs)).query(features(ours), k=min(k, N))
    graph = csr_matrix((distance.reshape(-1) + 1e-9, index.reshape(-1), np.arange(0, N * index.shape[1] + 1,
                                                                                 index.shape[1])), shape=(N, N))
    _, order = min_weight_full_bipartite_matching(graph)
    return {key: v[torch.from_numpy(order)] for key, v in theirs.items()}


def differences(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor], outliers: int = 0) -> dict[str, float]:
    """The largest differences between two splat sets in the same order, in units a user can judge:
    positions as a fraction of the scene's extent, colour (0.5 + C0 sh0, clamped to 0-1 as formats that store
    8-bit colour do) and opacity in 0-1, log-scales, rotation in degrees, higher SH coefficients as stored.
    With `outliers`, each is the largest after leaving out that many worst splats."""
    o = {k: v.double() for k, v in ours.items()}
    t = {k: v.double() for k, v in theirs.items()}
    N = o["means"].shape[0]
    extent = float((o["means"].amax(0) - o["means"].amin(0)).max())
    qo = torch.nn.functional.normalize(o["quats"], dim=-1)
    qt = torch.nn.functional.normalize(t["quats"], dim=-1)
    cos_half = (qo * qt).sum(-1).abs().clamp(max=1.0)
    dim = min(o["shN"].shape[1], t["shN"].shape[1])
    per_splat = {  # [N] each
        "position": (o["means"] - t["means"]).abs().amax(-1) / extent,
        "colour": ((o["sh0"] * C0 + 0.5).clamp(0, 1) - (t["sh0"] * C0 + 0.5).clamp(0, 1)).abs().reshape(N, -1).amax(-1),
        "opacity": (torch.sigmoid(o["opacities"]) - torch.sigmoid(t["opacities"])).abs(),
        "log_scale": (o["scales"] - t["scales"]).abs().amax(-1),
        "rotation_deg": torch.rad2deg(2 * torch.arccos(cos_half)),
        "sh": (o["shN"][:, :dim] - t["shN"][:, :dim]).abs().reshape(N, -1).amax(-1) if dim else torch.zeros(N),
    }
    return {k: float(v.sort(descending=True).values[min(outliers, N - 1)]) for k, v in per_splat.items()}


def assert_close_splats(ours, theirs, tolerances: dict[str, float], match: bool = False,
                        outliers: int = 0) -> dict[str, float]:
    if match:
        theirs = matched(ours, theirs)
    found = differences(ours, theirs, outliers)
    over = {k: f"{found[k]:.4g} > {limit:g}" for k, limit in tolerances.items() if not found[k] <= limit}
    assert not over, f"beyond tolerance: {over} (all: {found})"
    return found


def numpy_params(params):
    return {k: np.asarray(v) for k, v in params.items()}
