"""A web page to share: one `.html` file that shows the world with orbit controls, without Python, a server or
a network (it opens from disk, or from any static file server).

The page is viser's own browser client (the one `spatial view` serves, shipped inside the viser package) with
the world embedded as a viser scene recording: a small script turns the embedded bytes into a blob URL and
starts the client in its file-playback mode, looking from the first training camera when the model has one.
viser's browser splats are RGB only (no higher SH bands) with 16-bit covariances, as in `spatial view`.
Written only; to edit the world again, export it from the run or the splat file it was made from.
"""

from __future__ import annotations

import base64
import json
import math
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from spatial.errors import SpatialError, file_error
from spatial.files import write_bytes_atomic
from spatial.render.sh import sh_to_rgb
from spatial.transforms import quat_to_rotmat

if TYPE_CHECKING:
    from spatial.formats import ExportContext


LOADER = """<script type="application/octet-stream" id="spatial-world">{data}</script>
<script>
(function () {{
  var text = atob(document.getElementById("spatial-world").textContent);
  var bytes = new Uint8Array(text.length);
  for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  var query = new URLSearchParams({camera});
  new URLSearchParams(location.search).forEach(function (value, key) {{ query.set(key, value); }});
  query.set("playbackPath", URL.createObjectURL(new Blob([bytes])));
  history.replaceState(null, "", location.pathname + "?" + query.toString());
}})();
</script>
"""


def viser_splats(params: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """viser's inputs for splats: centres, covariances R S^2 R^T, RGB (degree 0) and opacities."""
    p = {k: v.detach().cpu().float() for k, v in params.items()}
    R = quat_to_rotmat(torch.nn.functional.normalize(p["quats"], dim=-1))  # [N, 3, 3]
    cov = (R * torch.exp(2 * p["scales"])[:, None, :]) @ R.transpose(1, 2)
    return {"centers": p["means"].numpy(), "covariances": cov.numpy(),
            "rgbs": sh_to_rgb(p["sh0"][:, 0]).clamp(0, 1).numpy(),
            "opacities": torch.sigmoid(p["opacities"])[:, None].numpy()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recording(params: dict[str, torch.Tensor], view: dict[str, str]) -> bytes:
    """The world as a viser scene recording (a `.viser` file's bytes), starting at `view`."""
    import contextlib
    import io

    import viser

    with contextlib.redirect_stdout(io.StringIO()):  # viser announces its (throwaway) server
        server = viser.ViserServer(host="127.0.0.1", port=_free_port(), verbose=False)
    try:
        server.scene.add_gaussian_splats("/world", **viser_splats(params))
        vec = lambda key: tuple(float(x) for x in view[key].split(","))  # noqa: E731
        camera = server.initial_camera
        camera.up, camera.position, camera.look_at = (vec("initialCameraUp"), vec("initialCameraPosition"),
                                                      vec("initialCameraLookAt"))
        camera.fov = float(view["initialCameraFov"])
        return server.get_scene_serializer().serialize()
    finally:
        with contextlib.redirect_stdout(io.StringIO()):
            server.stop()


def initial_view(params: dict[str, torch.Tensor], cameras=None) -> dict[str, str]:
    """The page's first view, as viser's URL parameters: along the first of `cameras`, from half as far again
    from the world's centre (so the whole capture is in view, and no splat is next to the eye, which viser
    draws far larger than a rasterizer that clips it), with the scene's up as in `spatial view`; else from in
    front of the world, our -y up."""
    from spatial.camera_path import scene_frame

    means = params["means"].detach().cpu().double()
    centre = means.median(0).values
    if cameras is None:
        radius = float((means - centre).norm(dim=-1).quantile(0.9))
        eye, target = centre + torch.tensor([0.0, -0.5, -2.5], dtype=torch.float64, device="cpu") * radius, centre
        up, fov_y = torch.tensor([0.0, -1.0, 0.0], device="cpu"), 0.9
    else:
        c2w = cameras.cam_to_world[0].detach().cpu().double()
        distance = float((centre - c2w[:3, 3]).norm())
        eye = c2w[:3, 3] - c2w[:3, 2] * 0.5 * distance
        target = c2w[:3, 3] + c2w[:3, 2] * distance
        up = scene_frame(cameras)[1]
        fov_y = 2 * math.atan(0.5 * float(cameras.height[0]) / float(cameras.K[0, 1, 1]))
    vec = lambda v: ",".join(f"{float(x):.6g}" for x in v)  # noqa: E731
    return {"initialCameraPosition": vec(eye), "initialCameraLookAt": vec(target), "initialCameraUp": vec(up),
            "initialCameraFov": f"{fov_y:.6g}"}


def page(params: dict[str, torch.Tensor], cameras=None) -> bytes:
    import viser

    client = Path(viser.__file__).parent / "client" / "build" / "index.html"
    html = client.read_text(encoding="utf-8") if client.is_file() else ""
    if "<head>" not in html:
        raise SpatialError(f"viser's browser client is missing or unreadable ({client}); reinstall viser "
                           "(pip install --force-reinstall viser) to export a web page")
    view = initial_view(params, cameras)
    data = base64.b64encode(recording(params, view))
    loader = LOADER.format(data=data.decode("ascii"), camera=json.dumps({}))
    at = html.index("<head>") + len("<head>")
    return (html[:at] + "\n<title>spatial world</title>\n" + loader + html[at:]).encode("utf-8")


def save(params: dict[str, torch.Tensor], path: Path, context: ExportContext | None = None) -> None:
    """Write the page; the context's training cameras, when known, give the first view."""
    write_bytes_atomic(path, page(params, context.training_cameras() if context else None))


def load(path: Path) -> dict[str, torch.Tensor]:
    raise file_error(path, "a web page export is not read back; open the run or splat file it was made from")
