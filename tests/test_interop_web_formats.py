"""The web formats against PlayCanvas's own converter, splat-transform 3.7.0 (the code SuperSplat saves and
loads with), and the Khronos glTF validator: both directions, to each format's stated quantisation.

The world is 4,000 splats of the trained test run (a subset: splat-transform's SOG k-means takes minutes on a
CPU for the whole run), lifted to SH degree 3 (its degree-1 bands as trained, degrees 2-3 small random values)
and given random rotations, so every field of every format carries information.

Tolerances (`differences` in tests/interop_tools.py): positions as a fraction of the world's extent, colour
(0.5 + C0 sh0) and opacity in 0-1, log scales, rotation angle in degrees, higher SH coefficients as stored. Each
is the format's own step (half of it where the encoder rounds) with a little room; SOG's higher SH is a k-means
palette, bounded by its render instead (test_lossy_formats_render_like_the_ply).
"""

import json
import os
import subprocess

import pytest
import torch

from spatial.formats import load_splats, save_splats, spz
from spatial.metrics import psnr
from spatial.trained import load_splat_model
from tests.interop_tools import assert_close_splats, node_tool, splat_transform

pytestmark = pytest.mark.slow

EXACT = {"position": 1e-6, "colour": 1e-6, "opacity": 1e-6, "log_scale": 1e-5, "rotation_deg": 0.01, "sh": 1e-6}
TOLERANCE = {  # the format's quantisation, for splats a trained world has
    ".splat": {"position": 1e-6, "colour": 1 / 255, "opacity": 1 / 255, "log_scale": 1e-5, "rotation_deg": 1.5},
    ".compressed.ply": {"position": 1e-3, "colour": 0.01, "opacity": 1 / 255, "log_scale": 0.01,
                        "rotation_deg": 0.25, "sh": 1 / 64},
    ".sog": {"position": 1e-4, "colour": 0.01, "opacity": 1 / 255, "log_scale": 0.02, "rotation_deg": 2.0},
    ".spz": {"position": 1e-4, "colour": 0.005, "opacity": 1 / 255, "log_scale": 1 / 32, "rotation_deg": 0.25,
             "sh": 1 / 8},  # degree 1 to 5 bits, 2-3 to 4: steps of 1/16 and 1/8, rounded
    ".glb": EXACT,
}
MORTON = {".compressed.ply", ".sog"}  # formats that reorder the splats (matched back by centre)


@pytest.fixture(scope="module")
def world(trained_run):
    g = torch.Generator().manual_seed(3)
    params = load_splat_model(trained_run).params
    keep = torch.randperm(params["means"].shape[0], generator=g)[:4000]
    params = {k: v.detach()[keep].clone() for k, v in params.items()}
    N = params["means"].shape[0]
    params["quats"] = torch.nn.functional.normalize(torch.randn(N, 4, generator=g), dim=-1)
    rest = torch.randn(N, 15, 3, generator=g) * 0.1
    rest[:, :3] = params["shN"][:, :3]
    params["shN"] = rest.clamp(-0.95, 0.95)
    return params


@pytest.fixture(scope="module")
def world_ply(world, tmp_path_factory):
    path = tmp_path_factory.mktemp("world") / "world.ply"
    save_splats(world, path)
    return path


@pytest.mark.parametrize("name", ["a.ply", "a.splat", "a.compressed.ply", "a.sog", "meta.json", "a.spz", "v4.spz",
                                  "rdf.spz"])
def test_splat_transform_decodes_what_we_write(world, tmp_path, name):
    ours = tmp_path / name
    save_splats(world, ours, **({"spz_version": 4} if name == "v4.spz" else {"spz_axes": "rdf"} if
                                name == "rdf.spz" else {}))
    splat_transform(ours, tmp_path / "decoded.ply")
    theirs = load_splats(tmp_path / "decoded.ply")
    if name in ("a.spz", "v4.spz"):  # splat-transform takes SPZ in the PLY's axes; Niantic's come in turned
        theirs = spz.turned(theirs)  # (written with --spz-axes rdf, they come in as they are)
    suffix = ".sog" if name == "meta.json" else name[name.index("."):].replace("v4", "")
    tolerance = TOLERANCE.get(suffix, EXACT)
    found = assert_close_splats(world, theirs, tolerance, match=suffix in MORTON or suffix == ".splat")
    print(name, found)


# splat-transform's own encoders, where they quantise more coarsely than ours: its SOG colour codebook leaves
# the brightest and darkest colours up to 0.07 off (ours: under 0.01), and a few splats of a trained world farther
# (2 of 4,000 at 0.26 in one world, which its own decoder reads back alike): those few are left out of the bound.
THEIR_TOLERANCE = {".sog": {**TOLERANCE[".sog"], "colour": 0.08}}
THEIR_OUTLIERS = {".sog": 4}


@pytest.mark.parametrize("name", ["st.compressed.ply", "st.sog", "meta.json", "st.spz", "st.glb"])
def test_we_read_what_splat_transform_writes(world, world_ply, tmp_path, name):
    theirs = tmp_path / name
    splat_transform(world_ply, theirs, *(["-i", "3"] if name in ("st.sog", "meta.json") else []))
    if name == "st.spz":  # its SPZ is version 4 in the PLY's axes: read as rdf, without Niantic's turn
        assert theirs.read_bytes()[4] == 4
        ours = load_splats(theirs, spz_axes="rdf")
    else:
        ours = load_splats(theirs)
    suffix = ".sog" if name == "meta.json" else name[2:]
    found = assert_close_splats(world, ours, THEIR_TOLERANCE.get(suffix, TOLERANCE[suffix]), match=suffix in MORTON,
                                outliers=THEIR_OUTLIERS.get(suffix, 0))
    print(name, found)
    if suffix != ".glb":  # (it does not read .glb) we decode its file as it does itself, to float32 rounding
        splat_transform(theirs, tmp_path / "decoded.ply")
        decoded = load_splats(tmp_path / "decoded.ply")
        if suffix == ".spz":
            ours = spz.turned(load_splats(theirs))  # and Niantic's turn is a turn: read as rub, turned back
        assert_close_splats(decoded, ours, {**EXACT, "rotation_deg": 0.05, "log_scale": 1e-5})


def test_our_glb_passes_the_khronos_validator_but_for_the_extension_it_does_not_know(world, tmp_path):
    save_splats(world, tmp_path / "a.glb")
    validator = node_tool("splat-transform").parent.parent  # node_modules
    done = subprocess.run(["node", str(os.path.join(os.path.dirname(__file__), "interop", "validate_gltf.js")),
                           str(tmp_path / "a.glb")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NODE_PATH": str(validator)})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # gltf-validator 2.0.0-dev.3.10 (the newest) predates KHR_gaussian_splatting: it says it cannot validate the
    # extension and calls the extension's attribute names invalid. Every other check must pass.
    ours = {"ROTATION", "SCALE", "OPACITY", *[f"SH_DEGREE_{d}_COEF_{c}" for d in range(4) for c in range(2 * d + 1)]}
    allowed = {("MESH_PRIMITIVE_INVALID_ATTRIBUTE", f"/meshes/0/primitives/0/attributes/KHR_gaussian_splatting:{a}")
               for a in ours}
    errors = [(m["code"], m.get("pointer")) for m in report["issues"]["messages"] if m["severity"] == 0]
    assert errors and set(errors) <= allowed, errors
    assert report["issues"]["numWarnings"] == 0, report["issues"]["messages"]
    assert any(m["code"] == "UNSUPPORTED_EXTENSION" for m in report["issues"]["messages"])


# Render of each format read back against the PLY's, over the training views (dB). The quantised formats
# keep more than 40 dB; SOG's palette of higher SH bands and .splat's lack of them cost the most.
PSNR = {"a.compressed.ply": 40.0, "a.sog": 30.0, "a.spz": 38.0, "a.splat": 28.0, "a.glb": 60.0}


@pytest.mark.parametrize("name", sorted(PSNR))
def test_lossy_formats_render_like_the_ply(world, trained_run, tmp_path, name):
    from spatial.trained import SplatModel

    cameras = load_splat_model(trained_run).training_cameras()
    cameras = cameras[list(range(0, len(cameras), 4))]
    save_splats(world, tmp_path / name)
    reference = SplatModel(world, tmp_path / "world").render(cameras).rgb
    back = SplatModel(load_splats(tmp_path / name), tmp_path / name).render(cameras).rgb
    value = float(psnr(back, reference))
    print(name, f"{value:.1f} dB")
    assert value >= PSNR[name], value
