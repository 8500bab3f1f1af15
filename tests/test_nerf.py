"""NeRF parts against direct or closed-form references: hash encoding, volume rendering, sampling, losses."""

import math

import pytest
import torch

from spatial.nerf.field import FieldConfig, SpaceMap, contract
from spatial.nerf.hash_encoding import PRIMES, HashConfig, HashEncoding, hash_kernel
from spatial.nerf.rendering import distortion_loss, interlevel_loss, interval_outer, render_weights
from spatial.nerf.sampling import Spacing, pdf_edges, ray_box, uniform_edges


def direct_hash_encoding(table: torch.Tensor, x: torch.Tensor, resolutions: list[int], T: int) -> torch.Tensor:
    """Instant-NGP's encoding written corner by corner, point by point, without vectorisation tricks."""
    F = table.shape[1]
    out = torch.zeros(x.shape[0], len(resolutions) * F, dtype=table.dtype)
    for n in range(x.shape[0]):
        for level, res in enumerate(resolutions):
            p = [float(v) * res for v in x[n]]
            base = [min(math.floor(v), res - 1) for v in p]
            acc = torch.zeros(F, dtype=table.dtype)
            for dx in (0, 1):
                for dy in (0, 1):
                    for dz in (0, 1):
                        c = (base[0] + dx, base[1] + dy, base[2] + dz)
                        w = 1.0
                        for d, bit in enumerate((dx, dy, dz)):
                            f = p[d] - base[d]
                            w *= f if bit else 1 - f
                        if (res + 1) ** 3 <= T:
                            row = c[0] + (res + 1) * (c[1] + (res + 1) * c[2])
                        else:
                            row = (c[0] * PRIMES[0] ^ c[1] * PRIMES[1] ^ c[2] * PRIMES[2]) % T
                        acc = acc + w * table[level * T + row]
            out[n, level * F:(level + 1) * F] = acc
    return out


@pytest.mark.parametrize("backend,features", [("torch", 2), ("c", 2), ("c", 1), ("c", 3)])
def test_hash_encoding_matches_the_direct_implementation_in_values_and_gradients(backend, features):
    """The C lookup has a path unrolled for 2 features per row (every preset's) and a general one: both held."""
    if backend == "c" and hash_kernel() is None:
        pytest.skip("no C compiler here: the C hash lookup is not built")
    torch.manual_seed(0)
    # levels 4 and 8 fit the table densely (5^3, 9^3 <= 2^10); 16 and 32 are hashed, with collisions
    config = HashConfig(levels=4, features_per_level=features, log2_table_size=10, min_resolution=4,
                        max_resolution=32)
    enc = HashEncoding(config)
    assert enc.resolutions == [4, 8, 16, 32]
    with torch.no_grad():
        enc.table.normal_()
    x = torch.rand(40, 3)
    x[0] = torch.tensor([0.0, 1.0, 0.5])  # the cube's faces: the last cell, not one past it
    x[1] = torch.tensor([-0.25, 1.5, 0.999999])  # outside: clamped onto the faces
    table = enc.table.detach().double().requires_grad_()
    expected = direct_hash_encoding(table, x.clamp(0, 1).double(), enc.resolutions, enc.table_size)
    got = enc(x, backend=backend)
    torch.testing.assert_close(got.double(), expected.detach(), atol=1e-5, rtol=1e-5)
    upstream = torch.randn_like(expected)
    (grad_expected,) = torch.autograd.grad((expected * upstream).sum(), table)
    (grad_got,) = torch.autograd.grad((got * upstream.float()).sum(), enc.table)
    torch.testing.assert_close(grad_got.double(), grad_expected, atol=1e-5, rtol=1e-5)
    assert (grad_got != 0).any(dim=1).sum() > 100  # many rows touched, so the comparison means something


def test_the_c_hash_lookup_equals_the_torch_one_at_a_real_models_size():
    """12 levels up to 2048 (hashed corners whose products pass 2^32), 2^17 rows, points spread over both threads'
    blocks; the backward sums many points into shared rows, so only the order of additions may differ."""
    if hash_kernel() is None:
        pytest.skip("no C compiler here: the C hash lookup is not built")
    torch.manual_seed(1)
    enc = HashEncoding(HashConfig(levels=12, log2_table_size=17, max_resolution=2048))
    with torch.no_grad():
        enc.table.normal_()
    x = torch.rand(20_000, 3) * 0.2 + 0.4  # crowded: many points share rows at the coarse levels
    upstream = torch.randn(20_000, enc.out_dim)
    grads = {}
    for backend in ("torch", "c"):
        out = enc(x, backend=backend)
        (grads[backend],) = torch.autograd.grad((out * upstream).sum(), enc.table)
        grads[backend + " out"] = out.detach()
    torch.testing.assert_close(grads["c out"], grads["torch out"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads["c"], grads["torch"], atol=1e-3, rtol=1e-4)
    assert (grads["c"] != 0).any(dim=1).sum() > 10_000


def test_a_new_nerf_renders_alike_whatever_the_scene_units():
    """Densities are per unit of the scene's radius: the same capture in millimetres instead of metres starts from
    the same faint haze (per world unit, the field's first densities made a wall of fog of any scene whose radius is
    several units: monstree's, 7 units, trained to 11 dB held out against 20 dB per radius)."""
    from spatial.nerf.model import ModelConfig, NerfModel

    config = ModelConfig(field=FieldConfig(hash=HashConfig(levels=2, log2_table_size=8, max_resolution=16)),
                         proposal_hash=(HashConfig(levels=2, log2_table_size=8, max_resolution=16),),
                         proposal_samples=(16,), field_samples=8)
    dirs = torch.nn.functional.normalize(torch.randn(32, 3, generator=torch.Generator().manual_seed(0)), dim=-1)
    alphas = []
    for unit in (1.0, 1000.0):
        space = SpaceMap(torch.zeros(3), torch.full((3,), 7.0 * unit), bounded=False, density_scale=1 / (7.0 * unit))
        torch.manual_seed(0)
        model = NerfModel(space, config, num_images=1)
        with torch.no_grad():
            out = model(torch.zeros(32, 3), dirs, None, torch.zeros(3))
        # the light stopped within the radius (half of the normalised spacing; beyond it, space is contracted)
        alphas.append((out.weights * (out.edges[:, 1:] <= 0.5)).sum(-1))
    torch.testing.assert_close(alphas[0], alphas[1], atol=1e-4, rtol=1e-4)
    assert 0.05 < float(alphas[0].mean()) < 0.5  # a haze the rays see through, not a wall
    # a checkpoint from before has no density_scale: its densities stay per world unit
    assert SpaceMap.from_state({"center": [0, 0, 0], "half_size": [7, 7, 7], "bounded": False}).density_scale == 1.0


def test_one_slab_of_constant_density_renders_in_closed_form():
    sigma, a, b = 2.5, 1.0, 1.8  # density, slab entry and exit along the ray
    edges = torch.linspace(0.0, 4.0, 401)[None]  # 0.01 apart: a and b fall on edges
    mids = (edges[:, 1:] + edges[:, :-1]) / 2
    density = torch.where((mids > a) & (mids < b), torch.tensor(sigma), torch.tensor(0.0))
    w = render_weights(density, edges)
    L = b - a
    assert float(w.sum()) == pytest.approx(1 - math.exp(-sigma * L), abs=1e-5)
    # the expected termination depth given that the ray stops in the slab: a + 1/s - L e^{-sL} / (1 - e^{-sL})
    depth = float((w * mids).sum() / w.sum())
    closed = a + 1 / sigma - L * math.exp(-sigma * L) / (1 - math.exp(-sigma * L))
    assert depth == pytest.approx(closed, abs=1e-4)  # midpoint quadrature error is O(bin^2)
    # transmittance after the slab is exp(-sigma L), whatever the sampling
    coarse = torch.tensor([[0.0, a, b, 4.0]])
    wc = render_weights(torch.tensor([[0.0, sigma, 0.0]]), coarse)
    assert wc.tolist()[0] == pytest.approx([0.0, 1 - math.exp(-sigma * L), 0.0], abs=1e-6)


def test_light_stopped_by_a_surface_does_not_come_back_from_the_far_plane():
    """The last interval of an unbounded ray runs to the far plane: tau ~1e9, where float32 steps by 128. Summing the
    depth in front of it as `cumsum(tau) - tau` gave (40 + 1.6e9) - 1.6e9 = 0, so the far interval took a weight of 1
    behind an opaque surface: the weights summed to ~2, gradients spiked 150-fold, and a NeRF of monstree collapsed
    from 22.7 to 13 dB (training batches) in 20 steps, near step 1920 of a 6000-step run."""
    tau = torch.tensor([[0.05, 0.3, 2.0, 16.0, 1.6e9]])  # an opaque surface, then the far plane
    edges = torch.tensor([[0.0, 0.7, 0.705, 0.71, 0.712, 1000.0]])
    sigma = tau / (edges[:, 1:] - edges[:, :-1])
    w = render_weights(sigma, edges)  # [1, 5]
    exact = render_weights(sigma.double(), edges.double())  # float64: 1.6e9 + 18 is exact there
    torch.testing.assert_close(w.double(), exact, atol=1e-6, rtol=1e-5)
    assert float(w.sum()) <= 1.0 + 1e-6
    assert float(w[0, -1]) < 1e-7  # the far interval lies behind ~18 optical depths


def test_ray_box_and_spacing():
    o = torch.tensor([[-5.0, 0.0, 0.0], [-5.0, 3.0, 0.0]])
    d = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    t0, t1 = ray_box(o, d, torch.tensor([-1.0, -1, -1]), torch.tensor([1.0, 1, 1]))
    assert (t0[0].item(), t1[0].item()) == (4.0, 6.0)
    assert t1[1] < t0[1]  # the second ray misses
    s = torch.linspace(0, 1, 11)[None].expand(2, -1)
    lin = Spacing(torch.tensor([2.0, 1.0]), torch.tensor([4.0, 3.0])).to_t(s)
    torch.testing.assert_close(lin[0], torch.linspace(2, 4, 11))
    unb = Spacing(torch.tensor([0.1, 0.1]), torch.tensor([100.0, 100.0]), radius=1.0).to_t(s)
    assert unb[0, 0] == pytest.approx(0.1) and unb[0, -1] == pytest.approx(100.0, rel=1e-4)
    assert bool((unb[0, 1:] > unb[0, :-1]).all())
    assert (unb[0] <= 1).sum() >= 4  # the nearby unit radius keeps a good share of the samples


def test_pdf_resampling_follows_the_weights():
    edges = torch.linspace(0, 1, 11)[None].expand(1000, -1).contiguous()
    weights = torch.zeros(1000, 10)
    weights[:, 3] = 1.0  # all weight in [0.3, 0.4]
    new = pdf_edges(edges, weights, 32, jitter=True, generator=torch.Generator().manual_seed(0), padding=0.0)
    assert new.shape == (1000, 33) and bool((new[:, 1:] >= new[:, :-1]).all())
    inner = new[:, 1:-1]
    assert bool(((inner >= 0.3 - 1e-6) & (inner <= 0.4 + 1e-6)).all())
    assert new[:, 0].eq(0).all() and new[:, -1].eq(1).all()
    # uniform weights give back (nearly) uniform intervals
    flat = pdf_edges(edges[:1], torch.ones(1, 10), 20, jitter=False)
    torch.testing.assert_close(flat[0], torch.linspace(0, 1, 21), atol=1e-6, rtol=0)


def test_interlevel_loss_is_zero_when_the_proposal_bounds_the_weights():
    edges = torch.linspace(0, 1, 9)[None]
    weights = torch.tensor([[0, 0, 0.2, 0.5, 0.2, 0, 0, 0]])
    p_edges = torch.linspace(0, 1, 5)[None]  # each proposal interval covers two final ones
    bound = interval_outer(edges, p_edges, torch.tensor([[0.0, 0.7, 0.2, 0.0]]))
    torch.testing.assert_close(bound, torch.tensor([[0.0, 0.0, 0.7, 0.7, 0.2, 0.2, 0.0, 0.0]]))
    assert interlevel_loss(edges, weights, [(p_edges, torch.tensor([[0.0, 0.7, 0.2, 0.0]]))]).item() < 1e-12
    short = torch.tensor([[0.0, 0.3, 0.2, 0.0]], requires_grad=True)  # too little weight where it ends
    loss = interlevel_loss(edges, weights, [(p_edges, short)])
    assert loss.item() > 0
    loss.backward()
    assert short.grad[0, 1] < 0  # raising the proposal's weight there lowers the loss


def test_distortion_loss_matches_its_definition():
    torch.manual_seed(0)
    edges = torch.sort(torch.rand(3, 7), -1).values
    w = torch.rand(3, 6)
    mids = (edges[:, 1:] + edges[:, :-1]) / 2
    widths = edges[:, 1:] - edges[:, :-1]
    direct = (w[:, :, None] * w[:, None, :] * (mids[:, :, None] - mids[:, None, :]).abs()).sum((1, 2)) \
        + (w**2 * widths).sum(-1) / 3
    torch.testing.assert_close(distortion_loss(edges, w), direct.mean())


def test_scene_maps_and_contraction():
    box = SpaceMap(torch.tensor([1.0, 0, 0]), torch.tensor([2.0, 1, 1]))
    u, inside = box(torch.tensor([[1.0, 0, 0], [3.0, 1, 1], [3.5, 0, 0]]))
    torch.testing.assert_close(u[:2], torch.tensor([[0.5, 0.5, 0.5], [1.0, 1.0, 1.0]]))
    assert inside.tolist() == [True, True, False]
    p = torch.tensor([[0.5, 0.0, 0.0], [10.0, 0.0, 0.0], [1e6, 1e6, 0.0]])
    c = contract(p)
    torch.testing.assert_close(c[0], p[0])
    assert c[1, 0] == pytest.approx(1.9) and c.abs().max() < 2
    assert uniform_edges(4, 8, jitter=False, device="cpu").shape == (4, 9)


def test_a_view_that_is_not_a_training_photo_gets_the_training_photos_mean_appearance():
    from spatial.nerf.field import FieldConfig, RadianceField

    space = SpaceMap(torch.zeros(3), torch.ones(3), bounded=True)
    field = RadianceField(space, FieldConfig(hash=HashConfig(levels=2, log2_table_size=8), appearance_dim=4), 5)
    with torch.no_grad():  # images 0, 2, 3 trained; 1 and 4 held out (their rows never leave zero)
        field.appearance.weight[[0, 2, 3]] = torch.tensor([[1.0, 2, 3, 4], [3, 0, 3, 0], [2, 1, 0, -1]])
    assert torch.allclose(field.mean_appearance(), torch.tensor([2.0, 1, 2, 1]))
    x, dirs = torch.rand(3, 2, 3) - 0.5, torch.nn.functional.normalize(torch.randn(3, 3), dim=-1)
    field.appearance.weight.data[1] = torch.tensor([2.0, 1, 2, 1])  # an image whose embedding is that mean
    assert torch.allclose(field(x, dirs, None)[1], field(x, dirs, torch.ones(3, dtype=torch.long))[1])
