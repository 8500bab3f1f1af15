"""Our rasterizer's stages against gsplat's own pure-PyTorch twins (`gsplat/cuda/_torch_impl.py`), on the CPU.

Read against gsplat 1.5.3. gsplat's twins are loaded from their file, never through `import gsplat`:
the package's `__init__` reaches its CUDA backend, which on a machine with `nvcc` but no GPU starts a
JIT build that cannot succeed (spatial touches gsplat only where CUDA is available).

What is compared, and the tolerances (float32 inputs, float64 where stated):
- projection (world to camera, EWA with gsplat's clamped Jacobian, the eps2d low-pass, the
  anti-aliasing compensation): means2d to 1e-4 px, conics and compensations to 1e-5 relative, depths
  exactly;
- bounding boxes: the twin uses a plain 3.33-sigma box, gsplat's CUDA kernel (and we) the
  opacity-aware one, `min(3.33, sqrt(2 ln(opacity / (1/255))))` sigmas
  (ProjectionEWA3DGSFused.cu); ours must equal that kernel's formula applied to the twin's
  covariance, and the culled set must equal the kernel's rules;
- spherical harmonics of degrees 0-3, values and gradients to 1e-5;
- tile intersection: for every tile, the same Gaussians in the same depth order as the twin's
  `isect_tiles` + `isect_offset_encode`.
Compositing is not compared here: gsplat's twin of it calls a CUDA kernel (`rasterize_to_indices_in_range`)
and nerfacc's CUDA scans. It is held to a brute-force reference in test_render.py, and to gsplat's
kernels by test_gsplat_parity.py on a GPU.
"""

from __future__ import annotations

import importlib.util
import os
from importlib.metadata import version
from pathlib import Path

import pytest
import torch

from spatial.render.projection import project
from spatial.render.sh import eval_sh
from spatial.render.tiles import bin_gaussians
from tests.helpers import camera, random_gaussians

# gsplat's CUDA constants (ProjectionEWA3DGSFused.cu, 1.5.3), written out rather than taken from ours
GSPLAT_ALPHA_THRESHOLD = 1.0 / 255.0
GSPLAT_EXTEND = 3.33


@pytest.fixture(scope="module")
def gs():
    """gsplat's `cuda/_torch_impl.py` as a module of its own (its imports are torch and typing_extensions)."""
    spec = importlib.util.find_spec("gsplat")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        message = "gsplat is not installed (the dev extra installs it for this reference test)"
        if os.environ.get("CI"):
            pytest.fail(message)  # in CI this comparison must run, never be skipped
        pytest.skip(message)
    path = Path(spec.submodule_search_locations[0]) / "cuda" / "_torch_impl.py"
    module_spec = importlib.util.spec_from_file_location("gsplat_torch_reference", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    major, minor = (int(x) for x in version("gsplat").split(".")[:2])
    assert (major, minor) >= (1, 5), f"read against gsplat 1.5; found {version('gsplat')}"
    return module


def scene(n=400, seed=3, W=96, H=72):
    means, quats, scales, opacities, _ = random_gaussians(n, seed=seed, opacity_range=(0.002, 1.0), scale=0.15)
    means = means * torch.tensor([2.5, 2.0, 3.0])  # some behind the camera, some off screen
    w2c, K = camera(W, H)
    return means, quats, scales, opacities, w2c, K, W, H


@pytest.mark.parametrize("antialiased", [False, True])
def test_projection_matches_gsplats_twin(gs, antialiased):
    means, quats, scales, opacities, w2c, K, W, H = scene()
    ours = project(means, quats, scales, opacities, w2c, K, W, H, near=0.01, far=1e10, eps2d=0.3,
                   antialiased=antialiased)
    covars, _ = gs._quat_scale_to_covar_preci(quats, scales, compute_covar=True, compute_preci=False)
    _, means2d, depths, conics, compensations = gs._fully_fused_projection(
        means, covars, w2c, K, W, H, eps2d=0.3, near_plane=0.01, far_plane=1e10, calc_compensations=True)

    # the same sum in another order: equal to a few float32 ulps (CPUs differ in how BLAS orders it)
    torch.testing.assert_close(ours.depths, depths, rtol=1e-6, atol=1e-6)
    in_front = depths > 0.01
    torch.testing.assert_close(ours.means2d[in_front], means2d[in_front], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(ours.conics[in_front], conics[in_front], rtol=1e-5, atol=1e-7)
    expected_opacity = opacities[None] * (compensations if antialiased else 1)
    torch.testing.assert_close(ours.opacities[in_front], expected_opacity[in_front], rtol=1e-5, atol=1e-7)

    # gsplat's CUDA bounding box and culling rules, on the twin's (blurred) 2D covariance
    a, b, c = conics.unbind(-1)
    det = a * c - b * b
    cov_xx, cov_yy = c / det, a / det
    opacity = expected_opacity
    alpha_min = GSPLAT_ALPHA_THRESHOLD
    extend = torch.sqrt(2 * torch.log(opacity.clamp_min(alpha_min) / alpha_min)).clamp(max=GSPLAT_EXTEND)
    radii = torch.stack([torch.ceil(extend * cov_xx.sqrt()), torch.ceil(extend * cov_yy.sqrt())], -1)
    on_screen = ((means2d + radii > 0) & (means2d - radii < torch.tensor([W, H]))).all(-1)
    valid = in_front & (depths < 1e10) & (opacity >= alpha_min) & (radii > 0).any(-1) & on_screen
    ours_valid = (ours.radii > 0).any(-1)
    assert valid.sum() > 100 and (~valid).sum() > 50, "the scene should have kept and culled Gaussians"
    assert torch.equal(ours_valid, valid)
    assert torch.equal(ours.radii[valid], radii[valid].int())


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_spherical_harmonics_match_gsplats_twin(gs, degree):
    g = torch.Generator().manual_seed(degree)
    dirs = torch.randn(500, 3, generator=g, dtype=torch.float64)
    coeffs = torch.randn(500, 16, 3, generator=g, dtype=torch.float64)
    upstream = torch.randn(500, 3, generator=g, dtype=torch.float64)
    results = []
    for fn in (lambda d, k: eval_sh(degree, k, torch.nn.functional.normalize(d, dim=-1)),
               lambda d, k: gs._spherical_harmonics(degree, d, k)):
        d, k = dirs.clone().requires_grad_(), coeffs.clone().requires_grad_()
        value = fn(d, k)
        (value * upstream).sum().backward()
        results.append((value, d.grad, k.grad))
    for ours, theirs, name in zip(results[0], results[1], ("value", "d/dirs", "d/coeffs")):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5, msg=f"SH degree {degree}: {name}")


def test_tile_bins_match_gsplats_twin(gs):
    means, quats, scales, opacities, w2c, K, W, H = scene(n=250, seed=8, W=70, H=53)
    proj = project(means, quats, scales, opacities, w2c, K, W, H)
    tile_size = 16
    bins = bin_gaussians(proj.means2d[0], proj.radii[0], proj.depths[0], W, H, tile_size)
    _, isect_ids, flatten_ids = gs._isect_tiles(proj.means2d.detach(), proj.radii, proj.depths.detach(), tile_size,
                                                bins.tiles_x, bins.tiles_y)
    offsets = gs._isect_offset_encode(isect_ids, 1, bins.tiles_x, bins.tiles_y).flatten().tolist()
    offsets.append(len(flatten_ids))
    assert len(flatten_ids) == len(bins.gaussian_ids) > 200
    for tile in range(bins.tiles_x * bins.tiles_y):
        theirs = flatten_ids[offsets[tile]:offsets[tile + 1]].long().tolist()
        ours = bins.gaussian_ids[bins.offsets[tile]:bins.offsets[tile + 1]].tolist()
        assert ours == theirs, f"tile {tile}"
