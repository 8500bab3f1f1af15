"""The viewer's first picture of a big world: with the level of detail (viewer/lod.py) and without it.

    python scripts/bench_viewer_lod.py                                   # 2,000,000 splats, 3 repeats
    python scripts/bench_viewer_lod.py --out scripts/results/viewer_lod.json

A synthetic world (tests/helpers.py `big_world`: a sphere on a ground, all small splats) is opened in the
viewer and shown in Debian's Chromium, headless, drawing in software (this machine has no GPU), at 800x600.
The first picture is the first screenshot in which the world covers 3% of the view (the view left of the
panel; the settled preview covers 6-10%), counted from the moment the page is opened. The server is started
before that (its start time is printed apart). Configurations, in one run:
1. level of detail, the defaults (`LodConfig`: a preview of 10,000 splats, then up to a million);
2. everything at once (budget and preview above the world's size: what the viewer sent before the level of
   detail), waited for up to `--limit` seconds.
The target (issue #42) is a first picture within 5 s on 2 cores.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_picture(count: int, lod, limit: float) -> dict:
    """Open a world of `count` splats with `lod`; seconds from opening the page to the first picture."""
    from PIL import Image
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT))
    from spatial_viewer.app import ViewerApp
    from spatial_viewer.world import World
    from tests.helpers import big_world

    world = World()
    world.add_layer("big", big_world(count))
    world.forget_history()
    started = time.time()
    app = ViewerApp(world, [], None, None, Path(tempfile.mkdtemp()) / "edited.ply", lod=lod)
    app.start("127.0.0.1", free_port())
    start_seconds = time.time() - started
    profile = tempfile.mkdtemp()
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=shutil.which("chromium") or "/usr/bin/chromium", headless=True,
                args=FLAGS, viewport={"width": 800, "height": 600})
            page = context.new_page()
            opened = time.time()
            page.goto(app.url)
            first = None
            while time.time() - opened < limit:
                png = page.screenshot(clip={"x": 0, "y": 150, "width": 380, "height": 300}, timeout=limit * 1000)
                rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.float32)
                if (np.abs(rgb - 255).mean(-1) > 30).mean() > 0.03:
                    first, sent = time.time() - opened, app.drawn_count()
                    break
            context.close()
    except Exception as e:  # noqa: BLE001 - a screenshot that never came within the limit
        print(f"  no picture within {limit:.0f} s ({type(e).__name__})")
        first = None
    finally:
        sent = app.drawn_count() if first is None else sent
        app.stop()
        shutil.rmtree(profile, ignore_errors=True)
    return {"start_s": round(start_seconds, 2), "first_picture_s": None if first is None else round(first, 2),
            "sent": sent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2_000_000, help="splats in the world")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the level-of-detail configuration")
    parser.add_argument("--limit", type=float, default=90.0, help="seconds to wait for a first picture")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here (and .txt beside it)")
    args = parser.parse_args()
    from spatial_viewer.lod import LodConfig

    rows = []
    for name, lod, repeats in [("level of detail (defaults)", LodConfig(), args.repeats),
                               ("everything at once", LodConfig(budget=10**9, preview=10**9), 1)]:
        for _ in range(repeats):
            result = first_picture(args.count, lod, args.limit)
            print(name, result, flush=True)
            rows.append({"config": name, **result})
    lines = [f"{args.count:,} splats, Chromium headless (software WebGL), 800x600, 2 cores",
             f"{'configuration':30} {'server start s':>15} {'first picture s':>16} {'splats sent then':>17}"]
    for r in rows:
        first = "none" if r["first_picture_s"] is None else f"{r['first_picture_s']:.2f}"
        lines.append(f"{r['config']:30} {r['start_s']:15.2f} {first:>16} {r['sent']:17,}")
    lod_times = [r["first_picture_s"] for r in rows if r["config"].startswith("level") and r["first_picture_s"]]
    if lod_times:
        lines.append(f"level of detail: median first picture {statistics.median(lod_times):.2f} s "
                     f"(target <= 5 s: {'met' if max(lod_times) <= 5 else 'NOT met'} in every repeat)"
                     if len(lod_times) == args.repeats else "level of detail: some repeats showed no picture")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"count": args.count, "rows": rows}, indent=1) + "\n")
        args.out.with_suffix(".txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
