"""The INRIA 3DGS PLY layout: exact round trip, foreign files, bad files."""

import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement

from spatial import SpatialError
from spatial.formats.ply import load_ply, save_ply, sh_degree_of
from spatial.render import RenderOptions
from spatial.splats.model import render_splats


def random_params(n=50, degree=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"means": torch.randn(n, 3, generator=g), "quats": torch.randn(n, 4, generator=g),
            "scales": torch.randn(n, 3, generator=g) - 3, "opacities": torch.randn(n, generator=g),
            "sh0": torch.randn(n, 1, 3, generator=g), "shN": torch.randn(n, (degree + 1) ** 2 - 1, 3, generator=g)}


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_round_trip_is_exact(tmp_path, degree):
    params = random_params(degree=degree)
    save_ply(params, tmp_path / "s.ply")
    back = load_ply(tmp_path / "s.ply")
    assert sh_degree_of(back) == degree
    for k, v in params.items():
        assert torch.equal(back[k], v), k
    names = PlyData.read(str(tmp_path / "s.ply"))["vertex"].data.dtype.names
    expected = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
                + [f"f_rest_{i}" for i in range(3 * ((degree + 1) ** 2 - 1))]
                + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
    assert list(names) == expected


def test_f_rest_is_channel_major(tmp_path):
    """As the 3DGS code writes it: f_rest_0..14 are the red coefficients of bands 1-3."""
    params = random_params(n=3, degree=3)
    save_ply(params, tmp_path / "s.ply")
    vertex = PlyData.read(str(tmp_path / "s.ply"))["vertex"]
    assert np.isclose(vertex["f_rest_0"][1], params["shN"][1, 0, 0].item())
    assert np.isclose(vertex["f_rest_1"][1], params["shN"][1, 1, 0].item())
    assert np.isclose(vertex["f_rest_15"][1], params["shN"][1, 0, 1].item())


def test_foreign_ply_in_the_3dgs_layout_loads_and_renders(tmp_path):
    """A file written field by field as the original code does (float32, with normals, degree 3)."""
    n = 200
    rng = np.random.default_rng(0)
    fields = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(45)] + \
        ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    data = np.zeros(n, dtype=[(f, "f4") for f in fields])
    for f in ("x", "y"):
        data[f] = rng.uniform(-0.5, 0.5, n)
    data["z"] = rng.uniform(2.0, 3.0, n)
    for f in ("f_dc_0", "f_dc_1", "f_dc_2"):
        data[f] = rng.normal(0, 1, n)
    data["opacity"] = 2.0
    for f in ("scale_0", "scale_1", "scale_2"):
        data[f] = np.log(0.05)
    data["rot_0"] = 1.0
    PlyData([PlyElement.describe(data, "vertex")], text=False).write(str(tmp_path / "theirs.ply"))
    params = {k: torch.nn.Parameter(v) for k, v in load_ply(tmp_path / "theirs.ply").items()}
    assert sh_degree_of(params) == 3
    out = render_splats(params, torch.eye(4)[None], torch.tensor([[[60.0, 0, 32], [0, 60.0, 32], [0, 0, 1]]]),
                        64, 64, 3, options=RenderOptions())
    assert out.alpha[0, 20:44, 20:44].mean() > 0.9 and out.rgb.std() > 0.05


def test_missing_fields_are_named(tmp_path):
    data = np.zeros(3, dtype=[(f, "f4") for f in ("x", "y", "z", "opacity")])
    PlyData([PlyElement.describe(data, "vertex")]).write(str(tmp_path / "points.ply"))
    with pytest.raises(SpatialError, match=r"points\.ply: not a Gaussian-splat PLY: missing f_dc_0, .*rot_3"):
        load_ply(tmp_path / "points.ply")
    (tmp_path / "junk.ply").write_text("not a ply")
    with pytest.raises(SpatialError, match=r"junk\.ply: not a readable PLY"):
        load_ply(tmp_path / "junk.ply")


def test_an_infinite_opacity_is_a_fully_opaque_splat_but_nan_is_refused(tmp_path):
    """splat-transform decodes an 8-bit alpha of 255 (a compressed PLY's) to an opacity logit of +inf: such a file
    loads as the SPZ and SOG readers decode 255, 1e-6 short of 1, and -inf 1e-6 above 0. NaN means nothing."""
    params = random_params(n=4, degree=0)
    params["opacities"] = torch.tensor([float("inf"), -float("inf"), 0.0, 1.0])
    save_ply(params, tmp_path / "s.ply")
    back = load_ply(tmp_path / "s.ply")
    torch.testing.assert_close(torch.sigmoid(back["opacities"].double()),
                               torch.tensor([1 - 1e-6, 1e-6, 0.5, float(torch.sigmoid(torch.tensor(1.0)))],
                                            dtype=torch.float64), atol=1e-7, rtol=0)
    params["opacities"][2] = float("nan")
    save_ply(params, tmp_path / "nan.ply")
    with pytest.raises(SpatialError, match=r"nan\.ply: holds NaN or infinite values"):
        load_ply(tmp_path / "nan.ply")
    params["opacities"][2], params["means"][0, 0] = 0.0, float("inf")
    save_ply(params, tmp_path / "far.ply")
    with pytest.raises(SpatialError, match=r"far\.ply: holds NaN or infinite values"):
        load_ply(tmp_path / "far.ply")
