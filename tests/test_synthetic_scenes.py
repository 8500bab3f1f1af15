"""The built-in synthetic scenes: determinism and exact ground truth."""

import hashlib
import json

import numpy as np
import torch

from spatial import load_scene
from spatial.scenes import SCENES, make_scene
from spatial.scenes.raytrace import surface_distance


def digest(folder):
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != ".complete"):
        h.update(f.relative_to(folder).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_generation_is_deterministic(orbit_path, tmp_path):
    again = make_scene("orbit", "test", root=tmp_path)
    assert again != orbit_path and digest(again) == digest(orbit_path)


def test_cache_is_reused(orbit_path):
    mtime = (orbit_path / ".complete").stat().st_mtime
    assert make_scene("orbit", "test") == orbit_path
    assert (orbit_path / ".complete").stat().st_mtime == mtime


def test_layouts_load(orbit_path, facade_path):
    orbit, facade = load_scene(orbit_path), load_scene(facade_path)
    assert orbit.source_format == "blender" and orbit.background_rgb == (1.0, 1.0, 1.0)
    assert len(orbit) == 16 and len(orbit.test_ids) == 2 and orbit.points.shape == (1500, 3)
    assert facade.source_format == "nerfstudio" and len(facade) == 16
    assert (facade_path / "sparse" / "0" / "cameras.bin").is_file()


def test_depth_unprojects_onto_the_true_surfaces(orbit_path, facade_path):
    for name, path in (("orbit", orbit_path), ("facade", facade_path)):
        scene = load_scene(path)
        prims = SCENES[name].primitives()
        for i in (0, 5):
            stem = scene.image_paths[i].stem
            depth = torch.from_numpy(np.load(path / "ground_truth" / "depth" / f"{stem}.npy"))
            v, u = torch.nonzero(depth > 0, as_tuple=True)
            uv = torch.stack([u, v], -1).float() + 0.5
            points = scene.cameras[i].unproject(uv[None], depth[v, u][None])[0]
            assert surface_distance(prims, points.double()).max() < 1e-4


def test_sparse_points_lie_on_surfaces_and_project_onto_their_colour(orbit_path):
    scene = load_scene(orbit_path)
    assert surface_distance(SCENES["orbit"].primitives(), scene.points.double()).max() < 1e-4
    # Colours agree with the images where the points are seen (straight RGB of an opaque pixel).
    uv, z = scene.cameras[scene.train_ids[0]].project(scene.points)
    image = scene.load_image(scene.train_ids[0])
    H, W = image.shape[:2]
    inside = (z[0] > 0) & (uv[0, :, 0] >= 0) & (uv[0, :, 0] < W) & (uv[0, :, 1] >= 0) & (uv[0, :, 1] < H)
    assert inside.sum() > 100


def test_normals_are_unit_and_face_the_camera(orbit_path):
    scene = load_scene(orbit_path)
    normal = np.load(orbit_path / "ground_truth" / "normal" / f"{scene.image_paths[0].stem}.npy")
    hit = np.linalg.norm(normal, axis=-1) > 0
    assert np.allclose(np.linalg.norm(normal[hit], axis=-1), 1, atol=1e-5)
    _, d = scene.cameras.rays(0)
    assert ((normal * d.numpy()).sum(-1)[hit] < 1e-6).all()


def test_ground_truth_summary(orbit_path):
    meta = json.loads((orbit_path / "ground_truth" / "scene.json").read_text())
    assert meta["name"] == "orbit" and 5.0 < meta["extent"] < 7.0
    scene = load_scene(orbit_path)
    truth = dict(zip(meta["images"], meta["cam_to_world"]))
    for name, c2w in zip(scene.image_names, scene.cameras.cam_to_world):
        assert np.allclose(truth[name], c2w.tolist(), atol=1e-6)


def test_each_instance_mask_pixel_sees_its_own_primitive(orbit_path, facade_path):
    from spatial.scenes.geometry import instance_mask

    for name, path in (("orbit", orbit_path), ("facade", facade_path)):
        scene, prims = load_scene(path), SCENES[name].primitives()
        meta = json.loads((path / "ground_truth" / "scene.json").read_text())
        assert meta["instances"] == {str(i + 1): type(p).__name__.lower() for i, p in enumerate(prims)}
        for i in (0, 5):
            mask = instance_mask(path, scene.image_paths[i])
            depth = np.load(path / "ground_truth" / "depth" / f"{scene.image_paths[i].stem}.npy")
            assert mask.dtype == np.uint8 and mask.shape == depth.shape
            np.testing.assert_array_equal(mask > 0, depth > 0)  # nothing hit: instance 0
            assert len(np.unique(mask)) >= 4  # the ground and several objects are in view
            for instance in np.unique(mask[mask > 0]):
                v, u = np.nonzero(mask == instance)
                uv = torch.from_numpy(np.stack([u, v], -1)).float() + 0.5
                points = scene.cameras[i].unproject(uv[None], torch.from_numpy(depth[v, u])[None])[0]
                assert prims[instance - 1].distance(points.double()).max() < 1e-4, (name, i, instance)
