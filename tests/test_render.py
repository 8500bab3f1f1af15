"""The portable rasterizer against the brute-force reference, finite differences, and SH."""

import numpy as np
import pytest
import torch

from spatial.cameras import intrinsics_from_fov
from spatial.render import RenderOptions, rasterize
from spatial.render.sh import eval_sh, rgb_to_sh, sh_to_rgb, view_colors
from tests.helpers import camera, random_gaussians
from tests.reference_rasterizer import reference_render


@pytest.mark.parametrize("n, opacity_range, antialiased", [
    (60, (0.1, 0.95), False),
    (300, (0.6, 1.0), False),  # dense and opaque: many pixels terminate early
    (60, (0.1, 0.95), True),
])
def test_forward_matches_brute_force(n, opacity_range, antialiased):
    W, H = 45, 37  # not multiples of the tile size
    means, quats, scales, opac, rgb = random_gaussians(n, seed=n, opacity_range=opacity_range)
    w2c, K = camera(W, H)
    bg = torch.tensor([0.2, 0.3, 0.4])
    out = rasterize(means, quats, scales, opac, rgb, w2c, K, W, H, background=bg,
                    options=RenderOptions(sh_degree=None, backend="torch", antialiased=antialiased))
    ref_rgb, ref_alpha, ref_depth = reference_render(
        *(x.double().numpy() for x in (means, quats, scales, opac, rgb)), w2c[0].double().numpy(),
        K[0].double().numpy(), W, H, background=bg.double().numpy(), antialiased=antialiased)
    assert ref_alpha.max() > 0.9  # the scene is actually covered
    np.testing.assert_allclose(out.rgb[0].numpy(), ref_rgb, atol=1e-4)
    np.testing.assert_allclose(out.alpha[0, ..., 0].numpy(), ref_alpha, atol=1e-4)
    covered = ref_alpha > 0.5
    np.testing.assert_allclose(out.depth[0, ..., 0].numpy()[covered], ref_depth[covered], rtol=1e-4)


def test_several_cameras_and_tile_sizes_agree():
    means, quats, scales, opac, rgb = random_gaussians(80, seed=3)
    w2c_a, K = camera(40, 30)
    w2c_b, _ = camera(40, 30, eye=(-1.0, 0.5, -2.5))
    w2c = torch.cat([w2c_a, w2c_b])
    K = K.expand(2, 3, 3)
    both = rasterize(means, quats, scales, opac, rgb, w2c, K, 40, 30, options=RenderOptions(sh_degree=None))
    single = rasterize(means, quats, scales, opac, rgb, w2c[1:], K[1:], 40, 30,
                       options=RenderOptions(sh_degree=None, tile_size=8))
    assert torch.allclose(both.rgb[1], single.rgb[0], atol=1e-5)
    assert not torch.allclose(both.rgb[0], both.rgb[1], atol=1e-2)
    # with SH colours at every degree, 0 included (whose colour is one row for all cameras)
    sh = torch.cat([rgb_to_sh(rgb)[:, None], 0.1 * torch.randn(80, 15, 3, generator=torch.Generator().manual_seed(1))],
                   1)
    for degree in range(4):
        options = RenderOptions(sh_degree=degree)
        both = rasterize(means, quats, scales, opac, sh, w2c, K, 40, 30, options=options)
        for c in range(2):
            single = rasterize(means, quats, scales, opac, sh, w2c[c:c + 1], K[c:c + 1], 40, 30, options=options)
            assert torch.allclose(both.rgb[c], single.rgb[0], atol=1e-5), (degree, c)


def test_culling_near_plane_and_off_screen():
    means = torch.tensor([[0.0, 0.0, -0.5], [50.0, 0.0, 1.0], [0.0, 0.0, 2.0]])  # behind, off-screen, visible
    quats = torch.tensor([[1.0, 0, 0, 0]]).expand(3, 4)
    scales = torch.full((3, 3), 0.1)
    out = rasterize(means, quats, scales, torch.full((3,), 0.9), torch.ones(3, 3), torch.eye(4)[None],
                    intrinsics_from_fov(60, 32, 32)[None], 32, 32, options=RenderOptions(sh_degree=None))
    assert out.visible[0].tolist() == [False, False, True]
    assert out.alpha[0, 16, 16, 0] > 0.75  # 0.9 * exp(-sigma) half a pixel off the centre


def test_gradients_match_finite_differences():
    W, H = 14, 11
    means, quats, scales, opac, _ = random_gaussians(5, seed=7, dtype=torch.float64, scale=0.35)
    sh = torch.randn(5, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 0.3
    w2c, K = camera(W, H, dtype=torch.float64)
    bg = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    options = RenderOptions(sh_degree=1, backend="torch")

    def f(means, quats, scales, opac, sh):
        out = rasterize(means, quats, scales, opac, sh, w2c, K, W, H, background=bg, options=options)
        return out.rgb, out.alpha

    inputs = tuple(x.clone().requires_grad_(True) for x in (means, quats, scales, opac, sh))
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)


def test_means2d_gradient_is_available_for_densification():
    means, quats, scales, opac, rgb = random_gaussians(30, seed=2)
    w2c, K = camera(32, 24)
    out = rasterize(means.requires_grad_(), quats, scales, opac, rgb, w2c, K, 32, 24,
                    options=RenderOptions(sh_degree=None))
    out.means2d.retain_grad()
    out.rgb.sum().backward()
    grad = out.means2d.grad[0]
    assert grad.shape == (30, 2)
    assert (grad[out.visible[0]].abs().sum(-1) > 0).float().mean() > 0.5
    assert (grad[~out.visible[0]] == 0).all()


@pytest.mark.parametrize("backend", ["torch", "cpu"])
def test_a_gaussian_flat_on_screen_keeps_gradients_finite_when_antialiased(backend):
    """A Gaussian seen exactly edge-on has a singular screen covariance: the anti-aliasing compensation is
    sqrt(0), whose autograd derivative is infinite. Its backward is gsplat's, 0.5 / (sqrt + 1e-6), instead:
    before, one such Gaussian made every parameter's gradient NaN and stopped a 1,650-step run on a real capture."""
    w2c = torch.eye(4)[None]
    w2c[0, 2, 3] = 3.0
    K = torch.tensor([[[30.0, 0.0, 16.0], [0.0, 30.0, 12.0], [0.0, 0.0, 1.0]]])
    inputs = [torch.zeros(2, 3), torch.tensor([[1.0, 0, 0, 0]] * 2), torch.tensor([[0.3] * 3, [0.0, 0.3, 0.3]]),
              torch.tensor([0.5, 0.5])]
    inputs = [x.requires_grad_() for x in inputs]
    out = rasterize(*inputs, torch.rand(2, 3), w2c, K, 32, 24,
                    options=RenderOptions(sh_degree=None, antialiased=True, backend=backend))
    out.rgb.sum().backward()
    for x in inputs:
        assert torch.isfinite(x.grad).all()
    assert inputs[0].grad[0].abs().sum() > 0  # the round one still learns


def test_spherical_harmonics():
    rgb = torch.rand(10, 3)
    assert torch.allclose(sh_to_rgb(rgb_to_sh(rgb)), rgb, atol=1e-6)
    # Degree 0 is view-independent; degree 1 flips sign with the direction.
    coeffs = torch.zeros(1, 16, 3)
    coeffs[0, 0] = rgb_to_sh(torch.tensor([0.5, 0.5, 0.5]))
    coeffs[0, 3] = 0.2  # the x basis
    d = torch.tensor([[1.0, 0, 0]])
    assert torch.allclose(eval_sh(0, coeffs, d), torch.zeros(1, 3), atol=1e-6)
    assert torch.allclose(eval_sh(1, coeffs, d), -eval_sh(1, coeffs, -d), atol=1e-6)
    # Orthonormality of the basis: integrating Y_i * Y_j over the sphere gives the identity.
    dirs = torch.nn.functional.normalize(torch.randn(200000, 3, generator=torch.Generator().manual_seed(0)), dim=-1)
    basis = torch.stack([eval_sh(3, torch.eye(16)[:, k:k + 1].expand(16, 3)[None].expand(len(dirs), 16, 3), dirs)[:, 0]
                         for k in range(16)], -1)  # [D, 16]
    gram = basis.T @ basis * (4 * np.pi / len(dirs))
    assert torch.allclose(gram, torch.eye(16), atol=0.03)
    # view_colors adds 0.5 and clamps at zero, as gsplat does.
    colors = view_colors(coeffs.expand(2, 16, 3).clone(), torch.zeros(2, 3), torch.eye(4)[None], 3)
    assert colors.shape == (1, 2, 3) and (colors >= 0).all()
