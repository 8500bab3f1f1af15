"""The viewer's on-screen tools in a real browser (Debian's chromium, headless, through playwright): a rectangle
dragged over the built-in orbit scene and deleted, a click that moves the orbit centre to the surface, and a
measured distance scaled to a typed length.

The world is made from the scene's true surfaces (flat Gaussians where rays from the test camera hit them, with the
scene's shading), so where the browser's clicks land can be checked against ray-traced truth.
"""

import math
import time

import numpy as np
import pytest
import torch

from tests.test_viewer_browser import W, H, browser, free_port, steady_render, wait_until  # noqa: F401

pytestmark = pytest.mark.slow
EXTENT = 4.0  # the orbit scene's ground square is 4 units across
SHOTS = "/tmp/shots"  # set to a folder to keep the screenshots (the README's come from here)


def editor_camera():
    """A camera of the orbit scene's kind: from 3.3 units out and 1.8 up, at the scene's centre."""
    from spatial.cameras import look_at

    eye = torch.tensor([[2.2, -2.4, 1.8]], dtype=torch.float64)
    return look_at(eye, torch.tensor([[0.0, 0.0, 0.3]], dtype=torch.float64),
                   torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))[0]


def surface_splats(c2w: torch.Tensor, fov_y: float, cols: int = 96, rows: int = 72) -> dict:
    """Flat Gaussians on the orbit scene's surfaces where a `cols x rows` grid of rays from `c2w` hits them."""
    from spatial.render.sh import rgb_to_sh
    from spatial.scenes import orbit
    from spatial.scenes.raytrace import shade
    from spatial.transforms import rotmat_to_quat

    f = 0.5 * rows / math.tan(fov_y / 2)
    v, u = torch.meshgrid(torch.arange(rows, dtype=torch.float64) + 0.5, torch.arange(cols, dtype=torch.float64) + 0.5,
                          indexing="ij")
    dirs_cam = torch.stack([(u - cols / 2) / f, (v - rows / 2) / f, torch.ones_like(u)], -1).reshape(-1, 3)
    d = torch.nn.functional.normalize(dirs_cam @ c2w[:3, :3].T, dim=-1)
    o = c2w[:3, 3].expand_as(d)
    sun = torch.nn.functional.normalize(torch.tensor([0.3, -0.4, 0.9], dtype=torch.float64), dim=0)
    colour, hit, t, n = shade(orbit.primitives(), o, d, sun, 0.4)
    points, n, t, colour = (o + t[:, None] * d)[hit], n[hit], t[hit], colour[hit]
    # a frame per Gaussian with its z axis along the normal: flat along the surface, thin across it
    helper = torch.where((n[:, 2].abs() < 0.9)[:, None], torch.tensor([0.0, 0, 1], dtype=torch.float64),
                         torch.tensor([1.0, 0, 0], dtype=torch.float64))
    x = torch.nn.functional.normalize(torch.linalg.cross(helper, n), dim=-1)
    R = torch.stack([x, torch.linalg.cross(n, x), n], -1)  # [N, 3, 3], columns: x, y, normal
    cos = (-(d[hit] * n).sum(-1)).clamp_min(0.35)
    footprint = t / f / cos  # the grid's spacing on the surface (about: grazing surfaces are left thinner)
    count = len(points)
    return {"means": points.float(), "quats": rotmat_to_quat(R).float(),
            "scales": torch.log(torch.stack([0.45 * footprint, 0.45 * footprint, torch.full_like(t, 1e-3)], -1)).float(),
            "opacities": torch.full((count,), 4.0), "sh0": rgb_to_sh(colour.clamp(0, 1)).float()[:, None],
            "shN": torch.zeros(count, 0, 3)}


@pytest.fixture
def editor(browser, tmp_path):  # noqa: F811
    """The viewer on the surface world, the browser's camera on the test camera: (app, page, client)."""
    from spatial.transforms import rotmat_to_quat
    from spatial_viewer.app import ViewerApp
    from spatial_viewer.world import World

    c2w = editor_camera()
    fov_y = math.radians(50)
    world = World()
    world.add_layer("orbit", surface_splats(c2w, fov_y))
    world.forget_history()
    app = ViewerApp(world, out=tmp_path / "edited.ply", background=(1.0, 1.0, 1.0))
    app.start("127.0.0.1", free_port())
    page = browser.new_page()
    page.goto(app.url)
    client = wait_until(lambda: next(iter(app.server.get_clients().values()), None))
    time.sleep(1.5)  # viser's own first camera arrives before ours can be set (BROWSER_TESTS.md)
    with client.atomic():
        client.camera.up_direction = (0.0, 0.0, 1.0)
        client.camera.fov = fov_y
        client.camera.wxyz = rotmat_to_quat(c2w[:3, :3].float()).numpy()
        client.camera.position = c2w[:3, 3].numpy()
    wait_until(lambda: np.allclose(client.camera.position, c2w[:3, 3].numpy(), atol=1e-3))
    try:
        yield app, page, client
    finally:
        app.stop()


def canvas_box(page) -> dict:
    """The 3D canvas's place on the page, in CSS pixels (x, y, width, height)."""
    return page.locator("canvas").first.bounding_box()


def test_rectangle_dragged_in_the_browser_deletes_exactly_what_projects_inside(editor):
    from spatial.splats.screen import in_screen_rect
    from spatial_viewer.poses import client_view

    app, page, client = editor
    before_shot = steady_render(client, app.background)
    app.tools.use("rectangle select")
    box = canvas_box(page)
    start = (box["x"] + 0.40 * box["width"], box["y"] + 0.30 * box["height"])
    end = (box["x"] + 0.70 * box["width"], box["y"] + 0.65 * box["height"])
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()
    selected = wait_until(lambda: app.world.selected_count())
    # the world model: exactly the centres inside the rectangle, from the camera the browser reports
    view = client_view(client.camera)
    w, h = int(view.width[0]), int(view.height[0])
    lo = ((start[0] - box["x"]) / box["width"] * w, (start[1] - box["y"]) / box["height"] * h)
    hi = ((end[0] - box["x"]) / box["width"] * w, (end[1] - box["y"]) / box["height"] * h)
    means = app.world.layer("orbit").params["means"]
    expected = in_screen_rect(means, view, lo, hi)
    mismatch = (app.world.selection["orbit"] != expected)
    # the browser reports the rectangle in its own pixels; one pixel of rounding at the edge is allowed
    edge = in_screen_rect(means, view, (lo[0] - 1, lo[1] - 1), (hi[0] + 1, hi[1] + 1)) & \
        ~in_screen_rect(means, view, (lo[0] + 1, lo[1] + 1), (hi[0] - 1, hi[1] - 1))
    assert not (mismatch & ~edge).any() and selected > 100, (int(mismatch.sum()), selected)
    count = app.world.layer("orbit").count
    page.get_by_role("button", name="Delete selection").click()
    wait_until(lambda: app.world.layer("orbit").count == count - selected)
    # the pixels: the rectangle is emptied to the background, the rest of the picture stays
    after = steady_render(client, app.background)
    ys, xs = np.mgrid[0:H, 0:W]
    inside = (xs > lo[0] / w * W + 8) & (xs < hi[0] / w * W - 8) & (ys > lo[1] / h * H + 8) & (ys < hi[1] / h * H - 8)
    outside = (xs < lo[0] / w * W - 12) | (xs > hi[0] / w * W + 12) | (ys < lo[1] / h * H - 12) | \
        (ys > hi[1] / h * H + 12)
    changed = np.abs(after - before_shot).max(-1) > 40
    white = (after > 235).all(-1)
    if SHOTS:
        from PIL import Image

        Image.fromarray(before_shot.astype(np.uint8)).save(f"{SHOTS}/before.png")
        Image.fromarray(after.astype(np.uint8)).save(f"{SHOTS}/after.png")
    print("inside changed", changed[inside].mean(), "white", white[inside].mean(), "outside", changed[outside].mean())
    assert white[inside].mean() > 0.9 and changed[inside].mean() > 0.5
    assert changed[outside].mean() < 0.02
    if SHOTS:
        from PIL import Image

        Image.fromarray(after.astype(np.uint8)).save(f"{SHOTS}/rectangle_deleted.png")
