"""The web formats by themselves (no Node needed): round trips within each format's quantisation, names that pick
the format, and hostile files refused in one line (tests/test_interop_web_formats.py checks them against
PlayCanvas's converter; tests/fuzz.py mutates them)."""

import io
import json
import struct
import zipfile

import numpy as np
import pytest
import torch
import trimesh

from spatial import SpatialError
from spatial.formats import is_splat_file, load_splats, save_splats, splat_format, spz
from tests.helpers import random_splat_params
from tests.interop_tools import assert_close_splats


@pytest.fixture
def world():
    params = random_splat_params(3000, sh_degree=3, seed=4)
    params["quats"] = torch.nn.functional.normalize(params["quats"], dim=-1)
    return params


@pytest.mark.parametrize("name, tolerance, reordered", [
    ("a.compressed.ply", {"position": 1e-3, "colour": 0.01, "opacity": 1 / 255, "log_scale": 0.01,
                          "rotation_deg": 0.25, "sh": 1 / 64}, True),
    ("a.sog", {"position": 1e-4, "colour": 0.01, "opacity": 1 / 255, "log_scale": 0.02, "rotation_deg": 2.0}, True),
    ("meta.json", {"position": 1e-4, "colour": 0.01, "opacity": 1 / 255, "log_scale": 0.02, "rotation_deg": 2.0},
     True),
    ("a.glb", {"position": 1e-6, "colour": 1e-6, "opacity": 1e-6, "log_scale": 1e-5, "rotation_deg": 0.01,
               "sh": 1e-6}, False),
])
def test_round_trip_within_the_formats_quantisation(world, tmp_path, name, tolerance, reordered):
    save_splats(world, tmp_path / name)
    assert_close_splats(world, load_splats(tmp_path / name), tolerance, match=reordered)


@pytest.mark.parametrize("version, rotation_deg", [(2, 12.0), (3, 0.25), (4, 0.25)])
def test_spz_versions_round_trip_and_say_their_version(world, tmp_path, version, rotation_deg):
    world["shN"] = world["shN"].clamp(-0.95, 0.95)
    save_splats(world, tmp_path / "a.spz", spz_version=version)
    raw = (tmp_path / "a.spz").read_bytes()
    assert raw[:4] == b"NGSP" if version == 4 else raw[:2] == b"\x1f\x8b"  # ZSTD streams, or one gzip stream
    assert_close_splats(world, load_splats(tmp_path / "a.spz"),
                        {"position": 1e-4, "colour": 0.005, "opacity": 1 / 255, "log_scale": 1 / 32,
                         "rotation_deg": rotation_deg, "sh": 1 / 8})
    # Niantic's axes in the file: read raw, the world is turned 180 degrees about x
    raw_axes = load_splats(tmp_path / "a.spz", spz_axes="rdf")
    torch.testing.assert_close(spz.turned(raw_axes)["means"], load_splats(tmp_path / "a.spz")["means"])
    # written in the PLY's axes (splat-transform's), read back in them: the same world, not turned
    save_splats(world, tmp_path / "b.spz", spz_version=version, spz_axes="rdf")
    torch.testing.assert_close(load_splats(tmp_path / "b.spz", spz_axes="rdf")["means"],
                               load_splats(tmp_path / "a.spz")["means"])
    torch.testing.assert_close(load_splats(tmp_path / "b.spz")["means"], raw_axes["means"])


def test_names_pick_the_format(tmp_path, world):
    assert splat_format(tmp_path / "x.compressed.ply").command == "compressed-ply"
    assert splat_format(tmp_path / "x.ply").command == "ply"
    assert splat_format(tmp_path / "folder" / "meta.json").command == "sog"
    save_splats(world, tmp_path / "a.compressed.ply")
    (tmp_path / "a.compressed.ply").rename(tmp_path / "saved-by-supersplat.ply")  # a plain name, same contents
    assert is_splat_file(tmp_path / "saved-by-supersplat.ply")
    assert load_splats(tmp_path / "saved-by-supersplat.ply")["means"].shape == (3000, 3)
    trimesh.creation.box().export(tmp_path / "mesh.glb")
    save_splats(world, tmp_path / "splats.glb")
    assert not is_splat_file(tmp_path / "mesh.glb") and is_splat_file(tmp_path / "splats.glb")
    with pytest.raises(SpatialError, match=r"mesh\.glb: has no KHR_gaussian_splatting primitive: it is a glTF file, "
                                           r"but not of Gaussian splats"):
        load_splats(tmp_path / "mesh.glb")


def _sog_members(world, tmp_path):
    save_splats(world, tmp_path / "a.sog")
    with zipfile.ZipFile(tmp_path / "a.sog") as z:
        return {name: z.read(name) for name in z.namelist()}


def _write_sog(path, members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    path.write_bytes(buffer.getvalue())


def test_hostile_sog_files_are_refused_in_one_line(world, tmp_path):
    members = _sog_members(world, tmp_path)
    meta = json.loads(members["meta.json"])
    bad = tmp_path / "bad.sog"
    cases = [
        ({**meta, "means": {**meta["means"], "files": ["../../etc/passwd", "means_u.webp"]}},
         "meta.json's means.files must name its images (plain file names)"),
        ({**meta, "count": 10**12}, "meta.json's count must be a whole number of splats from 1 to 268,402,689"),
        ({**meta, "count": 4000}, "means_l.webp is 56 x 56: the wrong size for 4,000 splats"),
        ({**meta, "version": 1}, "SOG version 1 is not supported"),
        ({**meta, "scales": {**meta["scales"], "codebook": [0.5] * 255}},
         "meta.json's scales.codebook must be 256 finite numbers"),
        ({**meta, "scales": {**meta["scales"], "codebook": [float("nan")] * 256}},
         "its meta.json: NaN is not a number JSON allows; spatial's JSON files hold finite numbers only"),
        ({**meta, "shN": {**meta["shN"], "count": 3}},
         "shN_centroids.webp is 960 x 32 where the palette needs 960 x 1"),
    ]
    for changed, message in cases:
        _write_sog(bad, {**members, "meta.json": json.dumps(changed).encode()})
        with pytest.raises(SpatialError, match=message.replace(".", r"\.").replace("(", r"\(").replace(")", r"\)")):
            load_splats(bad)
    _write_sog(bad, {**members, "quats.webp": b"RIFF\x00\x00\x00\x00WEBPjunk"})
    with pytest.raises(SpatialError, match=r"quats\.webp is not a readable WebP image"):
        load_splats(bad)
    bad.write_bytes((tmp_path / "a.sog").read_bytes()[:4000])
    with pytest.raises(SpatialError, match=r"bad\.sog: not a SOG file \(a zip of meta\.json and WebP images\)"):
        load_splats(bad)


def test_hostile_spz4_and_glb_files_are_refused_in_one_line(world, tmp_path):
    save_splats(world, tmp_path / "a.spz", spz_version=4)
    raw = bytearray((tmp_path / "a.spz").read_bytes())
    struct.pack_into("<Q", raw, 32 + 8, 10**15)  # the first stream claims a petabyte
    (tmp_path / "b.spz").write_bytes(bytes(raw))
    with pytest.raises(SpatialError, match=r"SPZ 4 stream 0 claims \d+ compressed / 1000000000000000 bytes where "
                                           r"the header implies 27000 bytes in a \d+-byte file: the file is damaged"):
        load_splats(tmp_path / "b.spz")
    save_splats(world, tmp_path / "a.glb")
    raw = (tmp_path / "a.glb").read_bytes()
    (tmp_path / "b.glb").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(SpatialError, match=r"reaches past the end of the binary chunk: the file is truncated"):
        load_splats(tmp_path / "b.glb")
    with pytest.raises(SpatialError, match=r"a web page export is not read back"):
        load_splats(tmp_path / "page.html") if (tmp_path / "page.html").write_text("<html>") else None


def test_compressed_ply_keeps_sh_and_refuses_a_bad_chunk_count(world, tmp_path):
    save_splats(world, tmp_path / "a.compressed.ply")
    back = load_splats(tmp_path / "a.compressed.ply")
    assert back["shN"].shape == (3000, 15, 3)
    raw = (tmp_path / "a.compressed.ply").read_bytes()
    (tmp_path / "b.compressed.ply").write_bytes(raw.replace(b"element vertex 3000", b"element vertex 2000", 1))
    with pytest.raises(SpatialError, match=r"12 chunks for 2000 splats; a compressed PLY has one per 256|truncated"):
        load_splats(tmp_path / "b.compressed.ply")
    assert np.isfinite(back["means"].numpy()).all()


def test_spatial_view_opens_the_web_formats_as_named_layers(world, tmp_path):
    from spatial_viewer.cli import build_app

    (tmp_path / "garden").mkdir()
    save_splats(world, tmp_path / "garden" / "meta.json")
    save_splats(world, tmp_path / "tree.compressed.ply")
    save_splats(world, tmp_path / "rock.glb")
    app = build_app([tmp_path / "garden" / "meta.json", tmp_path / "tree.compressed.ply", tmp_path / "rock.glb"],
                    tmp_path / "edited.ply", thumbnails=False)
    assert [(layer.name, layer.count) for layer in app.world.layers] == [("garden", 3000), ("tree", 3000),
                                                                          ("rock", 3000)]


def test_an_export_refuses_a_name_of_another_format(world, tmp_path, capsys):
    from spatial.cli import main

    save_splats(world, tmp_path / "a.ply")
    with pytest.raises(SystemExit):
        main(["export", "ply", str(tmp_path / "a.ply"), "--out", str(tmp_path / "b.compressed.ply")])
    assert (f"error: {tmp_path / 'b.compressed.ply'}: that name is a compressed-ply file; this command writes .ply "
            "(use `spatial export compressed-ply`, or another name)") in " ".join(capsys.readouterr().err.split())
    main(["export", "compressed-ply", str(tmp_path / "a.ply"), "--out", str(tmp_path / "b.compressed.ply")])
    assert load_splats(tmp_path / "b.compressed.ply")["means"].shape == (3000, 3)


def test_spz_axes_are_chosen_on_the_command_line_both_ways(tmp_path, world, capsys):
    from spatial.cli import main

    save_splats(world, tmp_path / "a.ply")
    main(["export", "spz", str(tmp_path / "a.ply"), "--spz-axes", "rdf", "--out", str(tmp_path / "st.spz")])
    said = " ".join(capsys.readouterr().out.split())
    assert "note: SPZ in the PLY's axes (right-down-front), as SuperSplat and splat-transform store it" in said
    main(["export", "ply", str(tmp_path / "st.spz"), "--input-spz-axes", "rdf", "--out", str(tmp_path / "back.ply")])
    main(["export", "ply", str(tmp_path / "st.spz"), "--out", str(tmp_path / "turned.ply")])
    back, turned = load_splats(tmp_path / "back.ply"), load_splats(tmp_path / "turned.ply")
    torch.testing.assert_close(back["means"], world["means"], atol=1e-3, rtol=0)  # 12 fractional bits
    torch.testing.assert_close(turned["means"], world["means"] * torch.tensor([1.0, -1.0, -1.0]), atol=1e-3, rtol=0)
    from spatial_viewer.cli import build_app  # what `spatial view --input-spz-axes rdf st.spz` opens

    app = build_app([tmp_path / "st.spz"], tmp_path / "edited.ply", thumbnails=False, spz_axes="rdf")
    torch.testing.assert_close(app.world.layers[0].params["means"], world["means"], atol=1e-3, rtol=0)
