"""Every render backend with every option goes forward and backward, and agrees with the reference.

The candidate renders a batch of two cameras with the compositing split into many chunks (each recomputed in
backward by checkpointing); the reference is the torch backend in one chunk, one camera at a time, which
tests/test_render.py holds to a brute-force rasterizer and tests/test_absgrad.py to the per-pixel definition of
AbsGS. A backend and option pair that cannot go backward, or that chunks or batches wrongly, fails here: the torch
backend with absgrad on did not go backward past its first chunk until this test.
"""

from __future__ import annotations

import pytest
import torch

from spatial.cameras import intrinsics_from_fov, look_at, rigid_inverse
from spatial.render import RenderOptions, rasterize, torch_backend
from spatial.render.cpu_backend import kernel_available
from spatial.render.gsplat_backend import gsplat_available
from tests.helpers import kernel_isas, random_gaussians

W, H, N = 48, 40, 300
BACKENDS = [  # "cpu:ISA" is the cpu backend with the kernel's build ISA (tests/helpers.py: kernel_isas)
    "torch",
    *(pytest.param(f"cpu:{isa}", marks=pytest.mark.skipif(not kernel_available(), reason="no C compiler"))
      for isa in kernel_isas()),
    pytest.param("gsplat", marks=[pytest.mark.cuda, pytest.mark.skipif(
        not (torch.cuda.is_available() and gsplat_available()), reason="needs a CUDA device and gsplat")]),
]


def cameras(device) -> tuple[torch.Tensor, torch.Tensor]:
    """Two cameras looking at the Gaussians from either side: world_to_cam `[2, 4, 4]`, K `[2, 3, 3]`."""
    eye = torch.tensor([[0.3, -0.2, -3.0], [-1.2, 0.4, -2.6]], dtype=torch.float64)
    c2w = look_at(eye, torch.zeros(2, 3, dtype=torch.float64), torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64))
    K = intrinsics_from_fov(50, W, H)[None].double().repeat(2, 1, 1)
    K[1, 0, 2] += 1.3  # an off-centre principal point
    return rigid_inverse(c2w).float().to(device), K.float().to(device)


def scene(sh_degree: int | None, device):
    """Gaussians `[N, ...]` with colours as SH of `sh_degree` (or plain RGB for None), leaves on `device`."""
    means, quats, scales, opacities, rgb = random_gaussians(N, seed=11, scale=0.15)
    if sh_degree is None:
        colors = rgb
    else:
        colors = torch.randn(N, (sh_degree + 1) ** 2, 3, generator=torch.Generator().manual_seed(12)) * 0.3
    return [x.to(device).requires_grad_() for x in (means, quats, scales, opacities, colors)]


def render_and_backward(backend: str, options: RenderOptions, sh_degree, device, views: list[int]):
    """Render `views` of the two cameras in one call, backward a random weighting of every output; the outputs and
    the gradients of the inputs and the absgrad sums."""
    inputs = scene(sh_degree, device)
    w2c, K = cameras(device)
    background = torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.4, 0.2]], device=device)[views]
    out = rasterize(*inputs, w2c[views], K[views], W, H, background=background,
                    options=RenderOptions(**{**options.__dict__, "backend": backend}))
    g = torch.Generator().manual_seed(3)
    weights = [torch.randn(2, *x.shape[1:], generator=g).to(device)[views] for x in (out.rgb, out.alpha, out.depth)]
    loss = sum((x * w).sum() for x, w in zip((out.rgb, out.alpha, out.depth), weights))
    out.means2d.retain_grad()
    loss.backward()
    grads = {name: x.grad for name, x in zip(("means", "quats", "scales", "opacities", "colors"), inputs)}
    grads["means2d"] = out.means2d.grad
    if options.absgrad:
        grads["absgrad"] = out.means2d.absgrad
    return out, grads


@pytest.mark.parametrize("cameras_per_call", [1, 2])
@pytest.mark.parametrize("sh_degree", [None, 0, 3])
@pytest.mark.parametrize("antialiased", [False, True], ids=["classic", "antialiased"])
@pytest.mark.parametrize("absgrad", [False, True], ids=["grad", "absgrad"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_and_backward_match_the_reference(backend, absgrad, antialiased, sh_degree, cameras_per_call,
                                                  monkeypatch):
    device = "cuda" if backend == "gsplat" else "cpu"
    backend, _, isa = backend.partition(":")
    if isa:
        monkeypatch.setenv("SPATIAL_KERNEL_ISA", isa)
    options = RenderOptions(sh_degree=sh_degree, antialiased=antialiased, absgrad=absgrad)
    views = list(range(cameras_per_call))
    # the reference: one camera per call, in one chunk (the default budget holds this whole image)
    reference = [render_and_backward("torch", options, sh_degree, device, [v]) for v in views]
    # the candidate: every camera in one call, compositing in chunks of at most 8 tiles' worth of 24 Gaussians
    monkeypatch.setattr(torch_backend, "CHUNK_ELEMENTS", 8 * 256 * 24)
    out, grads = render_and_backward(backend, options, sh_degree, device, views)

    atol, rtol = (1e-4, 1e-3) if backend == "gsplat" else (2e-5, 1e-4)
    for v, (ref, _) in enumerate(reference):
        for name in ("rgb", "alpha", "depth", "means2d"):
            torch.testing.assert_close(getattr(out, name)[v], getattr(ref, name)[0], atol=atol, rtol=0, msg=name)
        assert torch.equal(out.radii[v] > 0, ref.radii[0] > 0)
    assert out.alpha.amax() > 0.5  # something was drawn
    # The inputs' gradients are sums over the cameras; the screen-space ones are per camera.
    for name in ("means", "quats", "scales", "opacities", "colors"):
        expected = sum(grad[name] for _, grad in reference)
        assert expected.abs().max() > 0, name
        error = (grads[name] - expected).abs().max()
        assert error <= rtol * expected.abs().max(), f"{name}: {error:.3g} off, largest {expected.abs().max():.3g}"
    for name in ["means2d"] + (["absgrad"] if absgrad else []):
        expected = torch.cat([grad[name] for _, grad in reference])
        assert expected.abs().max() > 0, name
        error = (grads[name] - expected).abs().max()
        assert error <= rtol * expected.abs().max(), f"{name}: {error:.3g} off, largest {expected.abs().max():.3g}"
