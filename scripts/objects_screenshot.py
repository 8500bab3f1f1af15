"""Screenshots of the viewer's select-object tool on a world: before, after one click, after deleting the selection.

    python scripts/objects_screenshot.py RUN docs/images/objects_monstree_viewer.png [--view K] [--at X Y]

Opens `spatial view`'s app on RUN in headless Chromium, looks from training view K (default 0), chooses the
`select object` tool and clicks the canvas at fraction X, Y of its size (default: its centre, where the view's
optical axis is) with the mouse, as a user does, then deletes the selection as the Delete button does. The three
screenshots (the viewer tints a selection orange) are saved side by side.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from collider_screenshot import (  # noqa: E402 - the viewer in Chromium, as the collider's pictures are taken
    look_from,
    save_side_by_side,
    settled,
    viewer_in_browser,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--view", type=int, default=0, help="the training view to look from")
    parser.add_argument("--at", type=float, nargs=2, default=(0.5, 0.5), help="where to click, as fractions of "
                        "the canvas's width and height")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with viewer_in_browser(args.run, {"width": 1400, "height": 700}) as (app, page, client):
        box = page.locator("canvas").first.bounding_box()
        # around the canvas's centre (the view's optical axis), left of the panel, below the notices
        clip = {"x": box["x"] + box["width"] / 2 - 325, "y": 160, "width": 650, "height": 540}
        app.show_cameras(False)
        settled(page, clip)  # the app's first view, set when the browser connects, drawn
        look_from(client, app.cameras, args.view)
        before = settled(page, clip)
        app.tools.use("select object")
        page.mouse.move(box["x"] + args.at[0] * box["width"], box["y"] + args.at[1] * box["height"])
        time.sleep(0.3)
        page.mouse.down()
        time.sleep(0.1)
        page.mouse.up()
        start = time.time()
        while app.world.selected_count() == 0 and time.time() - start < 60:
            time.sleep(0.2)
        selected = app.world.selected_count()
        total = sum(layer.count for layer in app.world.layers)
        objects = len({int(i) for ids in app.world.segment().values() for i in ids.unique()})
        print(f"the click selected {selected:,} of {total:,} Gaussians ({objects} objects)")
        chosen = settled(page, clip)
        app.edit(app.world.delete_selected)
        after = settled(page, clip)
    save_side_by_side([before, chosen, after], args.out)


if __name__ == "__main__":
    main()
