"""The viewer's on-screen tools in a real browser (Debian's chromium, headless, through playwright): a rectangle
dragged over the built-in orbit scene and deleted, a click that moves the orbit centre to the surface, and a
measured distance scaled to a typed length.

The world is made from the scene's true surfaces (flat Gaussians where rays from the test camera hit them, with the
scene's shading), so where the browser's clicks land can be checked against ray-traced truth.
"""

import math
import os
import time

import numpy as np
import pytest
import torch

from tests.test_viewer_browser import H, W, browser, free_port, steady_render, wait_until  # noqa: F401

pytestmark = pytest.mark.slow
EXTENT = 4.0  # the orbit scene's ground square is 4 units across
SHOTS = os.environ.get("SPATIAL_SCREENSHOTS")  # a folder to keep page screenshots in (the README's come from here)


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
            "scales": torch.log(torch.stack([0.45 * footprint, 0.45 * footprint, torch.full_like(t, 1e-3)], -1))
            .float(),
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


def screenshot(page, name: str, settle=None) -> None:
    """Keep a screenshot of the page in SPATIAL_SCREENSHOTS, when set, with the Select folder folded so that the
    Tools panel shows."""
    if not SHOTS:
        return
    if settle is not None:
        time.sleep(3.0)  # software WebGL: the selection's highlight drawn
    import io

    from PIL import Image

    folder = page.get_by_text("Select", exact=True)
    if folder.count() and page.get_by_role("button", name="Select in box").is_visible():
        folder.first.click()
        time.sleep(1.0)
    notice = page.locator(".mantine-Notification-root button")  # headless chromium's "software WebGL" notice
    if notice.count():
        notice.first.click()
        time.sleep(1.0)
    shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    shot.quantize(256).save(os.path.join(SHOTS, name), optimize=True)  # a third of the size, for the README


def canvas_box(page) -> dict:
    """The 3D canvas's place on the page, in CSS pixels (x, y, width, height)."""
    return page.locator("canvas").first.bounding_box()


def test_rectangle_dragged_in_the_browser_deletes_exactly_what_projects_inside(editor):
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
    screenshot(page, "viewer_rectangle_selected.png", settle=client)
    # the world model: exactly the centres inside the rectangle the browser reported, projected (in numpy) with
    # the camera it reported; and that rectangle is the one dragged, to a pixel
    view, lo, hi = app.tools.last_rect
    assert view.cam_to_world.numpy() == pytest.approx(client_view(client.camera).cam_to_world.numpy(), abs=1e-6)
    w, h = int(view.width[0]), int(view.height[0])
    dragged = [((x - box["x"]) / box["width"] * w, (y - box["y"]) / box["height"] * h) for x, y in (start, end)]
    assert np.allclose(lo, dragged[0], atol=1.5) and np.allclose(hi, dragged[1], atol=1.5), (lo, hi, dragged)
    means = app.world.layer("orbit").params["means"].double().numpy()
    w2c = np.linalg.inv(view.cam_to_world[0].double().numpy())
    p = means @ w2c[:3, :3].T + w2c[:3, 3]
    K = view.K[0].double().numpy()
    u, v = K[0, 0] * p[:, 0] / p[:, 2] + K[0, 2], K[1, 1] * p[:, 1] / p[:, 2] + K[1, 2]
    expected = (p[:, 2] > 0.01) & (u >= lo[0]) & (u <= hi[0]) & (v >= lo[1]) & (v <= hi[1])
    assert np.array_equal(app.world.selection["orbit"].numpy(), expected) and selected > 100
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
    print("inside changed", changed[inside].mean(), "white", white[inside].mean(), "outside", changed[outside].mean())
    assert white[inside].mean() > 0.9 and changed[inside].mean() > 0.5
    assert changed[outside].mean() < 0.02
    screenshot(page, "viewer_rectangle_deleted.png")


def click_ray(page, app, fraction: tuple[float, float]):
    """Click the canvas at `fraction` (x, y) of its size; return the ray (origin, direction [3] float64) through
    the pixel the browser reported, of the camera it reported with the click (the view may still be settling)."""
    box = canvas_box(page)
    before = app.tools.last_click
    page.mouse.move(box["x"] + fraction[0] * box["width"], box["y"] + fraction[1] * box["height"])
    time.sleep(0.3)
    page.mouse.down()
    time.sleep(0.1)
    page.mouse.up()
    view, (x, y) = wait_until(lambda: app.tools.last_click if app.tools.last_click is not before else None)
    w, h = int(view.width[0]), int(view.height[0])
    assert abs(x - fraction[0] * w) < 1.5 and abs(y - fraction[1] * h) < 1.5, ((x, y), fraction, (w, h))
    K, c2w = view.K[0].double(), view.cam_to_world[0].double()
    d = c2w[:3, :3] @ torch.tensor([(x - K[0, 2]) / K[0, 0], (y - K[1, 2]) / K[1, 1], 1.0], dtype=torch.float64)
    return c2w[:3, 3], torch.nn.functional.normalize(d, dim=0)


def true_hit(o: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Where the ray meets the orbit scene's surfaces (ray-traced), `[3]`."""
    from spatial.scenes import orbit
    from spatial.scenes.raytrace import first_hit

    t = first_hit(orbit.primitives(), o[None], d[None])[0]
    assert torch.isfinite(t).all()
    return o + t[0] * d


def test_a_click_moves_the_orbit_centre_to_the_surface(editor):
    app, page, client = editor
    app.tools.use("focus")
    for fraction in ((0.3, 0.4), (0.5, 0.85)):  # left of the GUI panel, which covers the right of the page
        time.sleep(1.0)  # the camera has turned to the last orbit centre
        o, d = click_ray(page, app, fraction)
        truth = true_hit(o, d)
        wait_until(lambda truth=truth: np.linalg.norm(client.camera.look_at - truth.numpy()) < 0.5)
        time.sleep(0.5)
        error = float(np.linalg.norm(client.camera.look_at - truth.numpy()))
        print(f"orbit centre {client.camera.look_at} vs the true surface {truth.numpy()}: {error:.4f}")
        assert error < 0.02 * EXTENT, error


def test_a_measured_distance_scaled_to_the_typed_length(editor):
    app, page, client = editor
    app.tools.use("measure")
    a = true_hit(*click_ray(page, app, (0.08, 0.8)))  # two points on the ground, far apart
    wait_until(lambda: len(app.tools.points) == 1)
    b = true_hit(*click_ray(page, app, (0.5, 0.92)))
    wait_until(lambda: len(app.tools.points) == 2)
    known = float((a - b).norm())
    wait_until(lambda: page.get_by_text("distance").count() > 0)
    print(f"measured {app.tools.distance():.4f}, true {known:.4f}")
    screenshot(page, "viewer_measure.png", settle=client)
    length = page.get_by_label("True length")
    length.fill("2.5")
    length.press("Enter")
    wait_until(lambda: abs(float(app.tools.length.value) - 2.5) < 1e-9)
    page.get_by_role("button", name="Scale world to length").click()
    layer = wait_until(lambda: app.world.layer("orbit") if not torch.equal(app.world.layer("orbit").transform,
                                                                          torch.eye(4)) else None)
    T = layer.transform.double()
    scaled = float(((T[:3, :3] @ a + T[:3, 3]) - (T[:3, :3] @ b + T[:3, 3])).norm())
    print(f"the known distance is now {scaled:.4f} (typed 2.5)")
    assert abs(scaled - 2.5) / 2.5 < 0.005
    assert [label for label, _ in app.world.history()][-1].startswith("scale world")
