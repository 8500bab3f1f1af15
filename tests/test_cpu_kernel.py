"""The C compositing kernel against the pure-PyTorch path: forward and gradients on random inputs, in every build
of the kernel this machine runs (`SPATIAL_KERNEL_ISA`: its own instruction set, the baseline, and AVX2 on an
AVX-512 machine), each holding its own vector width."""

import platform

import pytest
import torch

from spatial.render import RenderOptions, cpu_kernel, rasterize
from spatial.render.cpu_backend import kernel_available
from tests.helpers import camera, kernel_isas, random_gaussians

pytestmark = pytest.mark.skipif(not kernel_available(), reason="no C compiler: the CPU kernel cannot be built")
X86 = platform.machine().lower() in ("x86_64", "amd64")


def cpu_flags() -> set[str]:
    try:
        return set(next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split())
    except (OSError, StopIteration):
        return set()


@pytest.fixture(params=kernel_isas())
def isa(request, monkeypatch):
    monkeypatch.setenv("SPATIAL_KERNEL_ISA", request.param)
    return request.param


def test_each_build_has_its_vector_width(isa):
    lanes = cpu_kernel.load().composite_lanes()
    if not X86:
        assert lanes == 4
    elif isa == "native":
        assert lanes == (16 if "avx512f" in cpu_flags() else 8 if "avx" in cpu_flags() else 4)
    else:
        assert lanes == {"portable": 4, "avx2": 8}[isa]


@pytest.mark.parametrize("n, opacity_range, sh_degree, seed", [
    (300, (0.3, 1.0), None, 0),  # dense: early termination and the alpha clamp are exercised
    (120, (0.05, 0.9), 2, 1),
    (50, (0.1, 0.95), None, 2),
])
def test_kernel_matches_torch_path(n, opacity_range, sh_degree, seed, isa):
    means, quats, scales, opac, rgb = random_gaussians(n, seed=seed, opacity_range=opacity_range)
    colors = rgb if sh_degree is None else torch.randn(n, (sh_degree + 1) ** 2, 3,
                                                       generator=torch.Generator().manual_seed(seed)) * 0.4
    w2c, K = camera(45, 37)
    g = torch.Generator().manual_seed(10 + seed)
    v_rgb, v_alpha, v_depth = torch.randn(1, 37, 45, 3, generator=g), torch.randn(1, 37, 45, 1, generator=g), \
        torch.randn(1, 37, 45, 1, generator=g)
    results = {}
    for backend in ("torch", "cpu"):
        inputs = [x.clone().requires_grad_() for x in (means, quats, scales, opac, colors)]
        out = rasterize(*inputs, w2c, K, 45, 37, background=torch.tensor([0.2, 0.3, 0.4]),
                        options=RenderOptions(sh_degree=sh_degree, backend=backend))
        out.means2d.retain_grad()
        loss = (out.rgb * v_rgb).sum() + (out.alpha * v_alpha).sum() + (out.depth * out.alpha * v_depth).sum()
        loss.backward()
        results[backend] = (out, [x.grad for x in inputs], out.means2d.grad)
    (a, grads_a, m2d_a), (b, grads_b, m2d_b) = results["torch"], results["cpu"]
    for name in ("rgb", "alpha"):
        assert torch.allclose(getattr(a, name), getattr(b, name), atol=1e-5), name
    assert torch.allclose(a.depth * a.alpha, b.depth * b.alpha, atol=1e-4)
    for name, ga, gb in zip(("means", "quats", "scales", "opacities", "colors"), grads_a, grads_b):
        scale = ga.abs().max().clamp_min(1e-6)
        assert ((ga - gb).abs().max() / scale) < 1e-4, name
    assert torch.allclose(m2d_a, m2d_b, atol=1e-4 * m2d_a.abs().max())


@pytest.mark.parametrize("shape", [(1, 37, 45, 3), (2, 16, 23, 3), (1, 6, 4, 1)],
                         ids=["image", "batch", "smaller-than-the-window"])
def test_ssim_kernel_matches_the_metric(shape, isa):
    from spatial.metrics import ssim
    from spatial.render.cpu_backend import ssim_cpu

    g = torch.Generator().manual_seed(shape[1])
    image = torch.rand(shape, generator=g)
    target = (image + 0.3 * torch.randn(shape, generator=g)).clamp(0, 1)
    weight = torch.rand((), generator=g) + 0.5  # an upstream gradient other than one
    values, grads = [], []
    for fn in (ssim, ssim_cpu):
        x = image.clone().requires_grad_()
        value = fn(x, target)
        (value * weight).backward()
        values.append(value.detach())
        grads.append(x.grad)
    assert 0.2 < values[0] < 0.95  # neither identical nor unrelated images
    torch.testing.assert_close(values[1], values[0], atol=1e-6, rtol=0)
    assert (grads[1] - grads[0]).abs().max() <= 1e-5 * grads[0].abs().max()
