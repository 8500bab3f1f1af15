"""AbsGS: the summed absolute per-pixel gradients of the projected centres, and densification that reads them."""

import pytest
import torch

from spatial.render import RenderOptions, rasterize
from spatial.render.cpu_backend import kernel_available
from spatial.splats.model import init_splats
from spatial.splats.step import StepConfig, TrainState, make_optimizers, train_step
from spatial.splats.strategies import DefaultStrategy
from tests.helpers import camera, random_gaussians

W, H = 14, 11
BACKENDS = ["torch", pytest.param("cpu", marks=pytest.mark.skipif(not kernel_available(), reason="no C compiler"))]


def per_pixel_absgrad(inputs, w2c, K, weights) -> torch.Tensor:
    """The definition, one pixel at a time: sum over pixels of |d(pixel's loss) / d(centre)| `[N, 2]`."""
    total = None
    for y in range(H):
        for x in range(W):
            out = rasterize(*inputs, w2c, K, W, H, options=RenderOptions(sh_degree=None, backend="torch"))
            out.means2d.retain_grad()
            (out.rgb[0, y, x] * weights[y, x]).sum().backward()
            g = out.means2d.grad[0].abs()
            total = g if total is None else total + g
    return total


@pytest.mark.parametrize("backend", BACKENDS)
def test_absgrad_is_the_sum_of_each_pixels_absolute_gradient(backend):
    inputs = [x.requires_grad_() for x in random_gaussians(40, seed=3, opacity_range=(0.2, 0.9), scale=0.3)]
    w2c, K = camera(W, H)
    weights = torch.randn(H, W, 3, generator=torch.Generator().manual_seed(4))
    expected = per_pixel_absgrad(inputs, w2c, K, weights)

    out = rasterize(*inputs, w2c, K, W, H, options=RenderOptions(sh_degree=None, absgrad=True, backend=backend))
    out.means2d.retain_grad()
    (out.rgb[0] * weights).sum().backward()
    absgrad, grad = out.means2d.absgrad[0], out.means2d.grad[0]
    assert expected.abs().max() > 0
    torch.testing.assert_close(absgrad, expected, rtol=1e-4, atol=1e-5)
    assert (absgrad > grad.abs() * 1.5).any()  # opposite pixels cancel in the gradient, not here
    assert (absgrad + 1e-6 >= grad.abs()).all()


def test_absgrad_is_absent_unless_asked_for():
    inputs = [x.requires_grad_() for x in random_gaussians(10, seed=1)]
    w2c, K = camera(W, H)
    out = rasterize(*inputs, w2c, K, W, H, options=RenderOptions(sh_degree=None))
    out.rgb.sum().backward()
    assert not hasattr(out.means2d, "absgrad")


@pytest.mark.parametrize("absgrad, grows", [(False, False), (True, True)])
def test_a_blurred_gaussian_over_fine_stripes_splits_only_with_absgrad(absgrad, grows):
    """One wide grey Gaussian over fine stripes, symmetric about its centre: the pixels on either side pull it
    in opposite directions, so its gradient cancels and only the absolute one sees the missing detail."""
    w2c = torch.eye(4)[None]
    w2c[0, 2, 3] = 3.0  # the Gaussian 3 units ahead, on the optical axis
    K = torch.tensor([[[30.0, 0.0, 16.0], [0.0, 30.0, 12.0], [0.0, 0.0, 1.0]]])
    params = init_splats(torch.zeros(1, 3), torch.full((1, 3), 0.5), 0, init_opacity=0.9, init_scale=1.0)
    with torch.no_grad():
        params["scales"][:] = torch.log(torch.tensor(0.6))
    x = (torch.arange(32) + 0.5 - 16).abs()  # pixel centres' distance from the Gaussian's
    target = ((x // 2) % 2 == 0).float()[None, :, None].expand(24, 32, 3)  # stripes 2 px wide, symmetric
    strategy = DefaultStrategy(refine_start=1, refine_every=2, refine_stop=100, reset_every=0, absgrad=absgrad,
                               grow_grad2d=0.0008 if absgrad else 0.0002, grow_scale3d=0.01)
    state = TrainState(params, make_optimizers(params, StepConfig().lr, 1.0), strategy.init_state(params),
                       torch.Generator().manual_seed(0))
    config = StepConfig(steps=10, sh_degree=0, ssim_lambda=0.0, render=RenderOptions(backend="torch"))  # L1: symmetric
    for _ in range(3):
        train_step(state, config, strategy, [target], w2c, K, torch.zeros(1, 3), 1.0)
    assert (state.params["means"].shape[0] > 1) == grows
