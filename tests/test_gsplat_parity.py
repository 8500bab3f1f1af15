"""On a CUDA machine with gsplat installed: our portable rasterizer equals gsplat's kernels.

Skipped (with the reason shown) where there is no CUDA device or no gsplat.
"""

import pytest
import torch

from spatial.render import RenderOptions, rasterize
from spatial.render.gsplat_backend import gsplat_available
from tests.helpers import camera, random_gaussians

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not (torch.cuda.is_available() and gsplat_available()),
                                 reason="needs a CUDA device and gsplat (pip install -e '.[cuda]')")]


@pytest.mark.parametrize("antialiased", [False, True])
@pytest.mark.parametrize("sh_degree", [0, 3])
def test_forward_and_gradients_match_gsplat(antialiased, sh_degree):
    n, W, H = 2000, 160, 120
    means, quats, scales, opac, _ = random_gaussians(n, seed=5)
    sh = torch.randn(n, (sh_degree + 1) ** 2, 3, generator=torch.Generator().manual_seed(0)) * 0.3
    w2c, K = camera(W, H)
    results = {}
    for backend in ("torch", "gsplat"):
        inputs = [x.cuda().requires_grad_() for x in (means, quats, scales, opac, sh)]
        out = rasterize(*inputs, w2c.cuda(), K.cuda(), W, H, background=torch.tensor([0.1, 0.2, 0.3]).cuda(),
                        options=RenderOptions(sh_degree=sh_degree, backend=backend, antialiased=antialiased,
                                              absgrad=True))
        g = torch.Generator(device="cuda").manual_seed(1)
        loss = (out.rgb * torch.randn(out.rgb.shape, generator=g, device="cuda")).sum() + out.alpha.sum()
        loss.backward()
        results[backend] = (out, [x.grad for x in inputs] + [out.means2d.absgrad])
    (a, grads_a), (b, grads_b) = results["torch"], results["gsplat"]
    assert torch.allclose(a.rgb, b.rgb, atol=1e-4) and torch.allclose(a.alpha, b.alpha, atol=1e-4)
    assert torch.equal(a.radii > 0, b.radii > 0)
    for name, ga, gb in zip(("means", "quats", "scales", "opacities", "sh", "absgrad"), grads_a, grads_b):
        assert (ga - gb).abs().max() <= 1e-3 * ga.abs().max().clamp_min(1e-6), name
