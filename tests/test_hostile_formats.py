"""Hostile files, round two: the web formats (SOG, compressed PLY, SPZ 3 and 4, GLB), checkpoints, `--resume`,
exposures and the images_N cache, case by case as an attacker found them. Each is refused in one line that names
the file and the field, or read as what it is; tests/test_fuzz.py looks for more (bombs included)."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from spatial import SpatialError
from spatial.formats import load_splats, save_splats
from tests.fuzz_inputs import (
    _mark_encrypted,
    _zip,
    _zip_members,
    expanded_tensor_payload,
    sog_member_bomb,
    sog_webp_bomb,
    spz_gzip_bomb,
    spz_zstd_bomb,
)
from tests.helpers import random_splat_params


def refused(path, *fragments) -> str:
    """Loading the splat file `path` raises one SpatialError naming it and saying each of `fragments`."""
    with pytest.raises(SpatialError) as error:
        load_splats(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.fixture
def world():
    return random_splat_params(200, sh_degree=1)


# ---- SOG ------------------------------------------------------------------------------------------
def _sog(tmp_path, world, change_meta=None, members=None) -> Path:
    save_splats(world, tmp_path / "a.sog")
    files = _zip_members((tmp_path / "a.sog").read_bytes())
    if change_meta:
        meta = json.loads(files["meta.json"])
        change_meta(meta)
        files["meta.json"] = json.dumps(meta).encode()
    files.update(members or {})
    (tmp_path / "b.sog").write_bytes(_zip(files))
    return tmp_path / "b.sog"


def test_sog_meta_values_are_checked(tmp_path, world):
    refused(_sog(tmp_path, world, lambda m: m.update(count=True)),
            "meta.json's count must be a whole number of splats")
    refused(_sog(tmp_path, world, lambda m: m.update(count=m["count"] + 1)),  # the padding's first pixel
            "quats.webp's alpha must be 252-255")
    refused(_sog(tmp_path, world, lambda m: m["means"].update(maxs=[88.0] * 3)), "positions reach",
            "outside -1e+07 to 1e+07")
    refused(_sog(tmp_path, world, lambda m: m["scales"].update(codebook=[-1e4] * 256)), "log-scales reach -1e+04")
    refused(_sog(tmp_path, world, lambda m: m["sh0"].update(codebook=[1e38] * 256)),
            "colours (SH degree 0) reach 1e+38")
    path = _sog(tmp_path, world, members={"meta.json": b"[" * 100_000 + b"]" * 100_000})
    refused(path, "its meta.json is nested more than 64 levels deep")
    path = _sog(tmp_path, world, members={"meta.json": b'{"version": 2, "count": 1' + b"0" * 30 + b"}"})
    refused(path, "is too large for a 64-bit integer")


def test_sog_members_of_other_zip_methods_or_encrypted_are_refused(tmp_path, world):
    save_splats(world, tmp_path / "a.sog")
    files = _zip_members((tmp_path / "a.sog").read_bytes())
    (tmp_path / "b.sog").write_bytes(_zip(files, {"quats.webp": zipfile.ZIP_BZIP2}))
    refused(tmp_path / "b.sog", "quats.webp is packed with zip method 12; a SOG's members are stored or deflated")
    (tmp_path / "b.sog").write_bytes(_mark_encrypted(_zip(files), "scales.webp"))
    refused(tmp_path / "b.sog", "scales.webp is encrypted")


def test_sog_bombs_are_refused_before_they_unpack(tmp_path, world):
    save_splats(world, tmp_path / "a.sog")
    original = (tmp_path / "a.sog").read_bytes()
    (tmp_path / "b.sog").write_bytes(sog_member_bomb(original))
    assert (tmp_path / "b.sog").stat().st_size < 2**20
    refused(tmp_path / "b.sog", "would unpack to 256 MB", "more than 32 times its size", "decompression bomb")
    (tmp_path / "b.sog").write_bytes(sog_webp_bomb(original))
    refused(tmp_path / "b.sog", "its 16,777,216 splats would unpack to 320 MB")


def test_an_unbundled_sog_is_exported_and_its_images_stay_beside_it(tmp_path, world, capsys):
    from spatial.cli import main

    save_splats(world, tmp_path / "a.ply")
    main(["export", "sog", str(tmp_path / "a.ply"), "--out", str(tmp_path / "sog" / "meta.json")])
    back = load_splats(tmp_path / "sog" / "meta.json")
    assert back["means"].shape == world["means"].shape
    meta = json.loads((tmp_path / "sog" / "meta.json").read_text())
    (tmp_path / "outside.webp").write_bytes((tmp_path / "sog" / meta["scales"]["files"][0]).read_bytes())
    (tmp_path / "sog" / meta["scales"]["files"][0]).unlink()
    (tmp_path / "sog" / meta["scales"]["files"][0]).symlink_to(tmp_path / "outside.webp")
    image = meta["scales"]["files"][0]
    refused(tmp_path / "sog" / "meta.json", f"its image '{image}' leads outside {tmp_path / 'sog'}",
            "SPATIAL_ALLOW_OUTSIDE_PATHS=1")


# ---- compressed PLY ---------------------------------------------------------------------------------------
def test_compressed_ply_bounds_and_property_types_are_checked(tmp_path, world):
    save_splats(world, tmp_path / "a.compressed.ply")
    data = (tmp_path / "a.compressed.ply").read_bytes()
    body = data.index(b"end_header\n") + len(b"end_header\n")
    bounds = np.frombuffer(data, "<f4", 18, body).copy()

    def with_bounds(change) -> bytes:
        b = bounds.copy()
        change(b)
        return data[:body] + b.tobytes() + data[body + 72:]

    (tmp_path / "b.compressed.ply").write_bytes(with_bounds(lambda b: b.__setitem__(3, 3e38)))
    refused(tmp_path / "b.compressed.ply", "positions reach")
    (tmp_path / "b.compressed.ply").write_bytes(with_bounds(lambda b: b.__setitem__(6, -1e4)))
    refused(tmp_path / "b.compressed.ply", "log-scales reach")
    (tmp_path / "b.compressed.ply").write_bytes(data.replace(b"uint packed_scale", b"float packed_scale"))
    refused(tmp_path / "b.compressed.ply", "not a compressed PLY: packed_scale must be a uint property")


# ---- SPZ ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version, bomb", [(3, spz_gzip_bomb), (4, spz_zstd_bomb)])
def test_spz_bombs_are_refused_from_their_headers(tmp_path, world, version, bomb):
    save_splats(world, tmp_path / "a.spz", spz_version=version)
    (tmp_path / "b.spz").write_bytes(bomb((tmp_path / "a.spz").read_bytes()))
    assert (tmp_path / "b.spz").stat().st_size < 2**20
    refused(tmp_path / "b.spz", "its header's 4,129,776 points of SH degree 3 would unpack to 256 MB",
            "decompression bomb")


# ---- GLB ---------------------------------------------------------------------------------------------------
def _glb(tmp_path, world, change, edit_text=lambda text: text) -> Path:
    save_splats(world, tmp_path / "a.glb")
    data = (tmp_path / "a.glb").read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    gltf = json.loads(data[20:20 + length])
    change(gltf)
    text = edit_text(json.dumps(gltf).encode())
    text += b" " * (-len(text) % 4)
    rest = data[20 + length:]
    (tmp_path / "b.glb").write_bytes(struct.pack("<III", 0x46546C67, 2, 20 + len(text) + len(rest))
                                     + struct.pack("<II", len(text), 0x4E4F534A) + text + rest)
    return tmp_path / "b.glb"


def _attributes(gltf) -> dict:
    return gltf["meshes"][0]["primitives"][0]["attributes"]


def test_glb_indices_offsets_and_values_are_checked(tmp_path, world):
    refused(_glb(tmp_path, world, lambda g: _attributes(g).update(POSITION=-1)),
            "POSITION names accessors entry -1, which the file does not have")
    refused(_glb(tmp_path, world, lambda g: g["accessors"][0].update(bufferView=-1)),
            "POSITION's accessor names bufferViews entry -1")
    refused(_glb(tmp_path, world, lambda g: g["accessors"][0].update(byteOffset=4)),
            "POSITION's 200 values reach past the end of their buffer view")
    refused(_glb(tmp_path, world, lambda g: g["accessors"][0].update(count="200")),
            "POSITION's count must be a whole number of at least 0, got '200'")
    refused(_glb(tmp_path, world, lambda g: _attributes(g).pop("KHR_gaussian_splatting:SH_DEGREE_1_COEF_2")),
            "has SH degree 1 coefficients but no KHR_gaussian_splatting:SH_DEGREE_1_COEF_2")
    refused(_glb(tmp_path, world, lambda g: g.update(accessors={"0": 1})), "names accessors entry")
    refused(_glb(tmp_path, world, lambda g: g.update(meshes=[[[[[[[[[[]]]]]]]]]] * 2)),
            "has no KHR_gaussian_splatting primitive")
    deep = _glb(tmp_path, world, lambda g: g.update(extras="DEEP"),
                lambda text: text.replace(b'"DEEP"', b"[" * 30_000 + b"]" * 30_000))
    refused(deep, "its glTF JSON is nested more than 64 levels deep")


def test_glb_opacity_outside_0_1_is_refused(tmp_path, world):
    path = _glb(tmp_path, world, lambda g: None)
    data = bytearray(path.read_bytes())
    gltf = json.loads(data[20:20 + struct.unpack_from("<I", data, 12)[0]])
    accessor = gltf["accessors"][_attributes(gltf)["KHR_gaussian_splatting:OPACITY"]]
    view = gltf["bufferViews"][accessor["bufferView"]]
    at = 20 + struct.unpack_from("<I", data, 12)[0] + 8 + view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
    struct.pack_into("<f", data, at, 2.0)
    path.write_bytes(bytes(data))
    refused(path, "an opacity is 2; opacities lie between 0 and 1")


# ---- checkpoints -----------------------------------------------------------------------------------------
def test_checkpoints_refuse_expanded_tensors_and_nan_weights(tmp_path, world, capsys):
    torch.save({"params": world, "step": 1}, tmp_path / "a.pt")
    (tmp_path / "b.pt").write_bytes(expanded_tensor_payload((tmp_path / "a.pt").read_bytes()))
    from spatial.trained import load_model

    with pytest.raises(SpatialError, match=r"b\.pt: params\.means: a tensor of shape \(1000000000,\) made from 4 "
                                           r"stored bytes \(an expanded view\); checkpoints hold plain tensors$"):
        load_model(tmp_path / "b.pt")
    world["sh0"][3] = float("nan")
    torch.save({"params": world, "step": 1}, tmp_path / "c.pt")
    with pytest.raises(SpatialError, match=r"c\.pt: sh0 of some Gaussians is NaN or infinite$"):
        load_model(tmp_path / "c.pt")


@pytest.fixture(scope="module")
def nerf_run(tmp_path_factory, orbit_path):
    from spatial.cli import main

    run = tmp_path_factory.mktemp("nerf") / "run"
    main(["train", "nerf", str(orbit_path), "--out", str(run), "--steps", "1", "--preset", "cpu", "--device", "cpu",
          "--model.field.hash.log2-table-size", "10", "--model.proposal-hash.0.log2-table-size", "8",
          "--model.proposal-hash.1.log2-table-size", "8"])
    return run


def test_a_nerf_checkpoint_is_checked_against_its_config_before_it_is_built(nerf_run, tmp_path):
    from spatial.trained import load_model

    checkpoint = next((nerf_run / "checkpoints").glob("step-*.pt"))
    payload = torch.load(checkpoint, weights_only=True)

    def broken(change) -> str:
        copy = {**payload, "config": json.loads(json.dumps(payload["config"])), "model": dict(payload["model"])}
        change(copy)
        torch.save(copy, tmp_path / "x.pt")
        with pytest.raises(SpatialError) as error:
            load_model(tmp_path / "x.pt")
        return str(error.value).removeprefix(f"{tmp_path / 'x.pt'}: ")

    assert broken(lambda p: p["config"]["model"]["field"]["hash"].update(log2_table_size=22)).startswith(
        "weight field.encoding.")  # a table of 2^22 rows is never allocated: the shapes disagree first
    assert broken(lambda p: p["config"]["model"]["field"]["hash"].update(levels=0)) == \
        "its config cannot build a NeRF: --model.field.hash.levels must be between 1 and 32, got 0"
    assert broken(lambda p: p["config"]["model"].update(field_samples="48")) == \
        "not a readable NeRF checkpoint (config.model.field_samples must be int, not '48')"
    first = next(iter(payload["model"]))
    assert broken(lambda p: p["model"].update({first: torch.full_like(p["model"][first], float("nan"))})) == \
        f"weight {first} holds NaN or infinite values; the run diverged or the file is damaged"


# ---- --resume ---------------------------------------------------------------------------------------------
@pytest.fixture
def splat_run(tmp_path, orbit_path):
    from spatial.cli import main

    run = tmp_path / "run"
    main(["train", "splat", str(orbit_path), "--out", str(run), "--step.steps", "2", "--preset", "cpu",
          "--downscale", "1", "--device", "cpu"])
    return run


@pytest.mark.parametrize("change, message", [
    (lambda p: p.update(params=list(p["params"].values())), "not a splat checkpoint: 'params' must hold tensors"),
    (lambda p: p.pop("optimizers"), "cannot resume from it: checkpoint has no 'optimizers'"),
    (lambda p: p.update(step="2"), "cannot resume from it: its step is '2', not a whole number of at least 0"),
    (lambda p: p["strategy_state"].update(grad2d=p["strategy_state"]["grad2d"][:-1]),
     "cannot resume from it: checkpoint.strategy_state.grad2d is a tensor of shape"),
    (lambda p: p["optimizers"]["means"]["state"][0].update(exp_avg=torch.zeros(3, 3)),
     "cannot resume from it: optimizers.means.state[0].exp_avg is a torch.float32 tensor of shape (3, 3), its "
     "parameter a torch.float32 one of"),
    (lambda p: p["optimizers"]["means"]["state"][0].pop("exp_avg_sq"),
     "cannot resume from it: optimizers.means.state[0] holds exp_avg, step; Adam keeps exp_avg, exp_avg_sq, step"),
    (lambda p: p.update(order=[10**6]), "its view order names images this scene does not train on"),
])
def test_resume_checks_the_checkpoint_against_the_run_before_restoring(splat_run, orbit_path, capsys, change,
                                                                       message):
    from tests.test_hostile_input import cli_error

    checkpoint = next((splat_run / "checkpoints").glob("step-*.pt"))
    payload = torch.load(checkpoint, weights_only=True)
    change(payload)
    torch.save(payload, checkpoint)
    error = cli_error(capsys, "train", "splat", orbit_path, "--out", splat_run, "--resume", "--step.steps", "3",
                      "--preset", "cpu", "--downscale", "1", "--device", "cpu")
    assert error.startswith(f"error: {checkpoint}: ") and message in error, error
    assert sorted(p.name for p in (splat_run / "checkpoints").iterdir()) == [checkpoint.name]  # nothing trained


# ---- the images_N cache --------------------------------------------------------------------------------------
def test_downscaling_a_downscaled_scene_never_rewrites_its_cache(facade_path, tmp_path):
    import shutil

    from spatial.images import image_size
    from spatial.io import load_scene

    folder = tmp_path / "facade"
    shutil.copytree(facade_path, folder)
    quarter = load_scene(folder).downscaled(4)
    before = {p: p.read_bytes() for p in quarter.image_paths}
    sixteenth = quarter.downscaled(4)  # what a script does with load_model(run).scene()
    assert {p: p.read_bytes() for p in quarter.image_paths} == before
    assert all(p.parent == folder / "images_16" for p in sixteenth.image_paths)
    assert [image_size(p) for p in sixteenth.image_paths] == \
        list(zip(sixteenth.cameras.width.tolist(), sixteenth.cameras.height.tolist()))
    again = load_scene(folder).downscaled(4)
    assert [image_size(p) for p in again.image_paths] == list(zip(again.cameras.width.tolist(),
                                                                  again.cameras.height.tolist()))


def test_a_cached_copy_of_another_size_is_rewritten_before_training(facade_path, tmp_path):
    import os
    import shutil

    from PIL import Image

    from spatial.io import load_scene
    from spatial.splats.trainer import SplatTrainer
    from tests.helpers import small_config

    folder = tmp_path / "facade"
    shutil.copytree(facade_path, folder)
    scene = load_scene(folder)
    scene.downscaled(2)
    test_image = folder / "images_2" / scene.image_names[scene.test_ids[0]]
    Image.open(test_image).resize((7, 5)).save(test_image)  # a held-out view's cached copy of the wrong size,
    later = test_image.stat().st_mtime + 10  # newer than its source
    os.utime(test_image, (later, later))
    trainer = SplatTrainer(scene, small_config(2, downscale=2), tmp_path / "run")  # rewritten, not trained on
    assert Image.open(test_image).size == (int(trainer.scene.cameras.width[scene.test_ids[0]]),
                                           int(trainer.scene.cameras.height[scene.test_ids[0]]))


# ---- the World API ------------------------------------------------------------------------------------------
def test_world_transforms_are_similarities_and_a_world_saves_only_what_its_readers_read(tmp_path, world):
    from spatial_viewer.world import World

    w = World()
    w.add_layer("a", world)
    with pytest.raises(SpatialError, match=r"^the transform of layer 'a' shears or stretches"):
        w.set_transform("a", torch.diag(torch.tensor([1.0, 3.0, 1.0, 1.0])))
    with pytest.raises(SpatialError, match=r"^the transform of layer 'b' mirrors or flattens the world"):
        w.add_layer("b", world, transform=torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0])))
    big = torch.eye(4)
    big[:3, :3] *= 1e5
    w.transform_world(big, "scale")
    with pytest.raises(SpatialError, match=r"^the transform of layer 'a' scales by 1e\+10"):
        w.transform_world(big, "scale again")
    move = torch.eye(4)
    move[:3, 3] = 9.99e6  # a transform within range, that takes splats 1e5 units out past 1e7
    w.transform_world(move, "move")
    with pytest.raises(SpatialError, match=r"^the world: positions reach .* scale or move its layers back before "
                                           r"saving it$"):
        w.save_splats(tmp_path / "big.ply")
    assert not (tmp_path / "big.ply").exists()


# ---- what spatial view opens ----------------------------------------------------------------------------------
def test_view_refuses_a_point_cloud_with_nan_points(tmp_path):
    import trimesh

    from spatial_viewer.layers import open_input

    points = np.random.default_rng(0).normal(size=(50, 3))
    points[7] = np.nan
    trimesh.PointCloud(points).export(tmp_path / "points.ply")
    with pytest.raises(SpatialError) as error:
        open_input(tmp_path / "points.ply")
    assert str(error.value) == f"{tmp_path / 'points.ply'}: 1 points have NaN or infinite coordinates"


def test_a_world_file_cannot_name_splats_outside_its_folder(tmp_path, world):
    from spatial_viewer.world import World

    w = World()
    w.add_layer("a", world)
    (tmp_path / "w").mkdir()
    w.save_world(tmp_path / "w" / "scene.world.json")
    data = json.loads((tmp_path / "w" / "scene.world.json").read_text())
    save_splats(world, tmp_path / "secret.ply")
    data["layers"][0]["file"] = "../secret.ply"
    (tmp_path / "w" / "scene.world.json").write_text(json.dumps(data))
    with pytest.raises(SpatialError, match=r"layers\[0\]: file '\.\./secret\.ply' leads outside"):
        World.load_world(tmp_path / "w" / "scene.world.json")
