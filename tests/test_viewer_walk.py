"""The viewer's collider and walk mode (viewer/panels/walk.py, spatial/mesh/walk.py), through its server API."""

from __future__ import annotations

import numpy as np
import pytest

from spatial.mesh.collider import ColliderConfig
from tests.test_viewer_browser import free_port


def inside(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """`[P]` whether each point is inside the closed mesh: an odd number of crossings along a ray (Moller-Trumbore,
    every triangle), independent of the voxels the walker uses."""
    direction = np.array([0.5773, 0.5774, 0.5775])
    a, b, c = (vertices[faces[:, i]].astype(np.float64) for i in range(3))  # [F, 3] each
    e1, e2 = b - a, c - a
    h = np.cross(direction, e2)
    det = (e1 * h).sum(1)  # [F]
    ok = np.abs(det) > 1e-12
    a, e1, e2, h, det = a[ok], e1[ok], e2[ok], h[ok], det[ok]
    result = []
    for p in points:
        s = p - a
        u = (s * h).sum(1) / det
        q = np.cross(s, e1)
        v = (q @ direction) / det
        t = (q * e2).sum(1) / det
        hits = (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 1e-9)
        result.append(hits.sum() % 2 == 1)
    return np.array(result)


@pytest.fixture
def app(trained_run, tmp_path):
    from spatial_viewer.cli import build_app

    app = build_app([trained_run], tmp_path / "edited.ply")
    app.start("127.0.0.1", free_port())
    yield app
    app.stop()


def test_the_walker_stops_at_a_wall_and_slides_along_it(tmp_path):
    """A floor with a box standing on it (up is +z here), walked at through the viewer's server API: the walker
    keeps its eye height over the floor, stops in front of the box, slides along its side, and is never inside."""
    from spatial.mesh.collider import _collider
    from spatial_viewer.app import ViewerApp
    from spatial_viewer.world import World
    from tests.test_collider import volume_of

    n, floor, top = 40, 6.0, 20.0
    i, j, k = np.meshgrid(np.arange(n), np.arange(n), np.arange(30), indexing="ij")
    box = np.maximum.reduce([14 - i, i - 25, 14 - j, j - 25, k - top])  # distance outside the box (+)
    sdf = np.minimum(k - floor, box).astype(np.float32)
    collider = _collider(volume_of(sdf, sdf > -4), ColliderConfig())
    app = ViewerApp(World(), out=tmp_path / "edited.ply", up=np.array([0.0, 0.0, 1.0]))
    app.start("127.0.0.1", free_port())
    try:
        app.walk.set_collider(collider)
        app.walk.set_eye_height(5.0)
        app.walk.set_walking(True)
        first = app.walk.walk_to("tester", np.array([5.0, 18.0, 3.0]))  # placed on the floor, at eye height
        assert first[2] == pytest.approx(floor + 0.5 + 5.0, abs=0.6)
        ahead = [app.walk.walk_to("tester", np.array([x, 18.0, 11.0])) for x in np.linspace(6, 35, 30)]
        assert ahead[-1][0] < 14 - 1.0  # stopped in front of the box's side at x = 14
        assert ahead[-1][0] > 9  # after walking up to it
        along = [app.walk.walk_to("tester", np.array([12.0, y, 11.0])) for y in np.linspace(18, 35, 20)]
        assert along[-1][1] > 30 and along[-1][0] < 14  # slid along the side, past the box's corner at y = 25
        path = np.array([first, *ahead, *along])
        assert not inside(collider.mesh.vertices, collider.mesh.faces, path).any()
        assert np.allclose(path[:, 2], first[2], atol=0.01)  # level: the floor is flat
    finally:
        app.stop()


def test_a_walk_through_a_built_in_scene_never_enters_the_collider(app):
    walk = app.walk
    collider = walk.make(ColliderConfig(resolution=64))  # what the Make collider button does, waited for
    assert walk.walker.eye_height > 0
    walk.set_eye_height(0.3)  # below the objects' tops: they are in the way
    walk.set_walking(True)
    mesh = collider.mesh
    start, end = np.array([-1.6, 0.05, 0.3]), np.array([1.6, 0.05, 0.3])  # across the scene, through its objects
    wanted = [start + (end - start) * t for t in np.linspace(0, 1, 60)]
    wanted += [end + np.array([0.0, 0.9 * np.sin(k), 0.0]) for k in np.linspace(0, 6, 30)]  # and sideways
    path = np.array([walk.walk_to("tester", w) for w in wanted])
    assert not inside(mesh.vertices, mesh.faces, path).any()  # never inside the collider
    assert inside(mesh.vertices, mesh.faces, np.array(wanted)).any()  # where it was asked to go, it would be
    assert np.linalg.norm(np.diff(path, axis=0), axis=1).sum() > 0.3  # and it walked


def test_walking_needs_a_collider_and_makes_one(app):
    app.walk.config = ColliderConfig(resolution=48)
    app.walk.set_walking(True)
    assert not app.walk.walking  # not yet: the collider is being made in the background
    with pytest.raises(ValueError, match="no collider yet"):
        app.walk.walk_to("tester", np.zeros(3))
    app.walk.wait(120)
    assert app.walk.collider is not None and app.walk.collider.mesh.to_trimesh().is_watertight
    app.walk.set_walking(True)
    assert app.walk.walking
