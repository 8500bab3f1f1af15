"""Collision meshes (spatial/mesh/collider.py, `spatial export collider`): closed, under the budget, on the true
surfaces, holes closed, insides filled, floaters dropped, and the voxel grid read back by another reader."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import trimesh

from spatial.cli import main
from spatial.mesh.collider import ColliderConfig, _collider, make_collider
from spatial.mesh.fusion import rendered_views
from spatial.mesh.tsdf import TSDFVolume
from spatial.trained import load_model
from tests.test_export_render import run_cli


def volume_of(sdf_voxels: np.ndarray, seen: np.ndarray, trunc_voxels: float = 4.0) -> TSDFVolume:
    """A fused volume holding a given signed distance (in voxels; + in front of surfaces) where `seen`."""
    shape = sdf_voxels.shape
    volume = TSDFVolume(torch.zeros(3), torch.tensor(shape, dtype=torch.float32) - 1, 1.0, trunc_voxels)
    assert volume.shape == shape
    volume.tsdf = torch.from_numpy(np.clip(sdf_voxels / trunc_voxels, -1, 1).reshape(-1)).float()
    volume.weight = torch.from_numpy(seen.reshape(-1).astype(np.float32))
    volume.color = torch.full((volume.tsdf.shape[0], 3), 0.5)
    return volume


def test_a_floor_with_a_hole_and_a_box_on_it_becomes_one_closed_solid():
    """A floor seen from above (z up here: the cameras look down -z) with a hole two voxels wide, a hollow box
    standing on it whose walls were seen from outside, and a floater: the hole is closed, the box's inside is
    filled, the floater is dropped, and the surface is closed where the floor was seen."""
    X = Y = 40
    Z = 24
    i, j, k = np.meshgrid(np.arange(X), np.arange(Y), np.arange(Z), indexing="ij")
    floor = 6.0
    sdf = k - floor  # in front of the floor: above it
    box = (i >= 14) & (i <= 25) & (j >= 14) & (j <= 25)
    top = 14.0
    # the box's surface as the cameras saw it: distance to its walls outside, negative just inside
    outside = np.maximum.reduce([14 - i, i - 25, 14 - j, j - 25, k - top])
    sdf = np.minimum(sdf, np.where(k > floor, outside, sdf))
    seen = sdf > -4  # nothing far behind a surface is seen
    hole = (i >= 30) & (i <= 31) & (j >= 5) & (j <= 6) & (k <= floor)
    seen &= ~hole  # a hole in the floor: no observation there
    sdf[hole] = 10
    blob = (np.abs(i - 5) <= 0) & (np.abs(j - 34) <= 0) & (np.abs(k - 18) <= 0)
    sdf = np.where(blob, -0.5, sdf)
    seen |= blob
    collider = _collider(volume_of(sdf.astype(np.float32), seen), ColliderConfig(min_size=0.1))
    solid = collider.solid
    assert solid[30:32, 5:7, int(floor) - 1:int(floor) + 1].any(-1).all()  # the hole is closed
    assert solid[16:24, 16:24, 8:13].all()  # the box's inside is filled
    assert not solid[5, 34, 18]  # the floater is gone
    assert not solid[:, :, int(floor) + 2][~box[:, :, 0]].any()  # and the air above the floor stays empty
    mesh = collider.mesh.to_trimesh()
    assert mesh.is_watertight and mesh.volume > 0  # closed, faces turned out
    top_of_floor = collider.mesh.vertices[(np.abs(collider.mesh.vertices[:, 0] - 8) < 2)
                                          & (np.abs(collider.mesh.vertices[:, 1] - 8) < 2), 2].max()
    assert abs(top_of_floor - floor) < 0.05  # where the fused distance put it, to a fraction of a voxel


def test_a_rooms_air_stays_empty():
    """Walls all around, seen from inside: the room's air was seen empty, so it is not filled however enclosed."""
    n = 30
    i, j, k = np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij")
    sdf = np.minimum.reduce([i - 4, 25 - i, j - 4, 25 - j, k - 4, 25 - k]).astype(np.float32)  # + inside the room
    collider = _collider(volume_of(sdf, sdf > -4), ColliderConfig())
    assert not collider.solid[8:22, 8:22, 8:22].any()
    assert collider.solid[3, 15, 15] and collider.mesh.to_trimesh().is_watertight


@pytest.fixture(scope="module")
def rendered(trained_run):
    model = load_model(trained_run)
    cameras = model.training_cameras()
    return model, cameras, rendered_views(model.render_frames(cameras))


def test_the_collider_of_a_built_in_scene_lies_on_its_true_surfaces(rendered):
    from spatial.scenes import SCENES
    from spatial.scenes.geometry import ground_truth_points
    from spatial.scenes.raytrace import surface_distance

    model, cameras, views = rendered
    collider = make_collider(views, cameras, ColliderConfig(resolution=128))
    mesh = collider.mesh.to_trimesh()
    assert mesh.is_watertight and len(mesh.faces) <= 150_000
    meta = json.loads((model.scene_path / "ground_truth" / "scene.json").read_text())
    extent = float(meta["extent"])
    truth = ground_truth_points(model.scene_path, 8000)  # on the surfaces the cameras see
    dense = torch.from_numpy(np.asarray(mesh.sample(100_000))).float()
    to_collider = torch.cat([torch.cdist(chunk, dense).min(1).values for chunk in truth.split(2000)])
    to_truth = surface_distance(SCENES[meta["name"]].primitives(), dense[:8000])
    print(f"truth -> collider median {float(to_collider.median()) / extent:.4f} of the extent, "
          f"collider -> truth {float(to_truth.median()) / extent:.4f}")
    # the test scene is 64x48 pixels trained for 300 steps; the default scene's own figures are in the README.
    # The surfaces seen lie on the collider (the acceptance's measure); the collider's own points include the
    # backs of surfaces seen from one side, a slab's thickness behind them
    assert float(to_collider.median()) < 0.01 * extent
    assert float(to_truth.median()) < ColliderConfig().thickness * collider.voxel_size


def test_the_budget_is_met_by_larger_voxels(rendered):
    _, cameras, views = rendered
    collider = make_collider(views, cameras, ColliderConfig(resolution=128, max_triangles=4000))
    assert len(collider.mesh.faces) <= 4000 and collider.mesh.to_trimesh().is_watertight


def test_the_world_far_from_the_cameras_is_left_out(rendered):
    """A capture's distant trees would stretch the box and with it the voxels; the collider reaches `reach` world
    radii (the cameras and 90% of the sparse points) from the cameras' centre, with voxels as small as that asks."""
    from spatial.scene import world_radius

    model, cameras, views = rendered
    points = model.scene().points
    everything = make_collider(views, cameras, ColliderConfig(resolution=64, reach=0))
    near = make_collider(views, cameras, ColliderConfig(resolution=64, reach=0.5), points)
    half = 0.5 * world_radius(cameras.centers, points)
    center = cameras.centers.mean(0).numpy()
    # marching cubes' padding puts the surface up to a voxel outside the cut box
    assert np.abs(near.mesh.vertices - center).max() <= half + 1.5 * near.voxel_size
    assert np.abs(everything.mesh.vertices - center).max() > half + 1.5 * near.voxel_size
    # the cut box's longest side is the cube's: 64 voxels across it
    assert near.voxel_size == pytest.approx(2 * half / 64, rel=1e-5) and near.voxel_size < everything.voxel_size
    assert near.mesh.to_trimesh().is_watertight


def test_the_command_writes_a_glb_and_a_voxel_grid_another_reader_opens(trained_run, tmp_path, capsys):
    from spatial.formats.glb import TURN

    main(["export", "collider", str(trained_run), "--out", str(tmp_path / "c.glb"), "--voxels", "0.08",
          "--max-triangles", "60000"])
    said = " ".join(capsys.readouterr().out.split())
    assert "wrote a collider of" in said and "and the solid as a" in said and "--level turns it to +Y" in said
    mesh = trimesh.load(tmp_path / "c.glb", force="mesh")
    assert mesh.is_watertight and len(mesh.faces) <= 60_000
    grid = trimesh.load(tmp_path / "c.binvox")  # trimesh's own binvox reader: its cells and their order
    model = load_model(trained_run)
    cameras = model.training_cameras()
    ours = make_collider(rendered_views(model.render_frames(cameras)), cameras, ColliderConfig(voxels=0.08),
                         model.scene().points)
    expected = ours.solid[::-1, ::-1]  # in the GLB's frame: ours turned 180 degrees about z (x and y flipped)
    dim = max(expected.shape)
    assert grid.shape == (dim, dim, dim)
    cube = np.zeros((dim, dim, dim), bool)
    cube[:expected.shape[0], :expected.shape[1], :expected.shape[2]] = expected
    np.testing.assert_array_equal(np.asarray(grid.matrix), cube)
    # binvox's placement (its author's): cell i's centre at translate + (i + 0.5) * scale / dim
    header = dict(line.split(" ", 1) for line in (tmp_path / "c.binvox").read_bytes().split(b"data\n")[0]
                  .decode().splitlines()[1:])
    translate, scale = np.array(header["translate"].split(), float), float(header["scale"])
    centres = ours.origin + np.argwhere(ours.solid) * ours.voxel_size
    turned = centres @ TURN.numpy()[:3, :3].T.astype(np.float64)
    placed = translate + (np.argwhere(cube) + 0.5) * scale / dim
    np.testing.assert_allclose(np.sort(placed, 0), np.sort(turned, 0), atol=1e-4)
    # and the mesh lies on the voxels' surface, in the same frame
    assert np.abs(mesh.bounds - np.stack([turned.min(0), turned.max(0)])).max() < 2 * ours.voxel_size


def test_bad_collider_options_get_one_line(trained_run, tmp_path):
    for args, message in ((["--max-triangles", "5"], "--max-triangles must be at least 12 (a box), got 5"),
                          (["--voxels", "-1"], "--voxels must be a size above 0 in scene units, got -1.0"),
                          (["--voxels", "0.1", "--level"], "--voxels writes a voxel grid, which --level would turn"),
                          (["--voxels", "0.00001"], "above 2,048; choose larger voxels"),
                          (["--out", str(tmp_path / "c.ply")], "this exporter writes .glb files")):
        code, out = run_cli("export", "collider", str(trained_run), *args)
        assert code == 2 and message in out and "Traceback" not in out, out
