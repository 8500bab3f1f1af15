"""A picture of a world's objects: the world, its objects each in a colour, one object selected by a click, and
the world with that object deleted.

    python scripts/objects_picture.py RUN docs/images/objects_orbit.png [--view K] [--click X Y]

Renders training view K (default 0) of RUN with our renderer four times: as it is; with every object of
`World.segment()` in a colour of its own (the first, the largest plane, blue); with what `World.select_object` selects
at the clicked pixel (default: the centre of the picture; a white cross) tinted orange as the viewer tints a
selection; and after `delete_selected`, as the viewer's tools do.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--view", type=int, default=0, help="the training view to render")
    parser.add_argument("--click", type=float, nargs=2, default=None, help="pixel x y to click (default: centre)")
    args = parser.parse_args()

    import numpy as np
    import torch
    from PIL import Image

    from spatial.render.sh import C0
    from spatial.trained import load_model
    from spatial_viewer.world import World

    model = load_model(args.run)
    camera = model.training_cameras()[args.view]
    W, H = int(camera.width[0]), int(camera.height[0])
    world = World()
    world.add_layer("world", {k: v.detach().cpu() for k, v in model.splat_params().items()})

    def render(params: dict) -> np.ndarray:
        from spatial.splats.model import render_splats

        degree = int(round((params["shN"].shape[1] + 1) ** 0.5)) - 1
        out = render_splats(params, camera.world_to_cam, camera.K, W, H, degree, background=torch.ones(3))
        return (out.rgb[0].clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)

    params = world.layer("world").params
    labels = world.segment()["world"]
    distinct = torch.tensor([[0.25, 0.35, 0.9], [0.95, 0.55, 0.1], [0.2, 0.7, 0.25], [0.85, 0.2, 0.2],
                             [0.6, 0.35, 0.8], [0.55, 0.35, 0.25], [0.9, 0.5, 0.75], [0.5, 0.5, 0.5],
                             [0.75, 0.75, 0.15], [0.1, 0.75, 0.8]])  # tab10's hues
    palette = distinct[torch.arange(int(labels.max()) + 1) % len(distinct)]
    coloured = {**params, "sh0": ((palette[labels] - 0.5) / C0)[:, None, :], "shN": params["shN"][:, :0]}
    before, objects = render(params), render(coloured)
    click = tuple(args.click) if args.click else (W / 2, H / 2)
    count = world.select_object(camera, click)
    chosen = world.selection["world"]
    orange = torch.tensor([1.0, 0.45, 0.0])
    tinted = params["sh0"].clone()
    tinted[chosen, 0] = 0.5 * tinted[chosen, 0] + 0.5 * (orange - 0.5) / C0
    selected = render({**params, "sh0": tinted, "shN": torch.where(chosen[:, None, None], 0.5, 1.0) * params["shN"]})
    x, y = int(click[0]), int(click[1])
    selected[max(y - 6, 0):y + 7, x] = selected[y, max(x - 6, 0):x + 7] = 255  # the click
    world.delete_selected()
    after = render(world.layer("world").params)
    gap = np.full((H, 8, 3), 255, np.uint8)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([before, gap, objects, gap, selected, gap, after], 1)).save(args.out)
    print(f"{int(labels.max()) + 1} objects; the click at {click} selected {count:,} Gaussians, deleted; "
          f"wrote {args.out}")


if __name__ == "__main__":
    main()
