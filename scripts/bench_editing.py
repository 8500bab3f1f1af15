"""Benchmark the viewer's edits on a million Gaussians: each must answer in under 0.5 s on a 2-core CPU.

    python scripts/bench_editing.py                     # 1,000,000 Gaussians, SH degree 3
    python scripts/bench_editing.py --count 200000 --record

What is timed is the world model (`spatial_viewer.world.World`), the part of an edit that grows with the number of
Gaussians: a rectangle selection from a 1280x720 browser camera (all centres, and front-most by our renderer's
depth), a click's pick, similar-colour selection, colour grading (a quarter selected, and a whole layer), delete,
undo, redo, selection to a new layer, and scaling the world. Sending the splats to the browser afterwards is
viser's and the browser's work, measured by scripts/bench_viewer_overhead.py. The baseline measured in the same run
is the box selection the viewer already had. Each figure is the median of 3 runs.

Output: stdout, and scripts/results/editing.txt and .json with --record.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BOUND_SECONDS = 0.5


def world_of(count: int):
    from spatial_viewer.world import World

    g = torch.Generator().manual_seed(0)
    params = {  # a capture-like cloud: a ground and objects spread 2-8 units in front of the camera
        "means": torch.rand(count, 3, generator=g) * torch.tensor([6.0, 3.0, 6.0]) + torch.tensor([-3.0, -1.5, 2.0]),
        "quats": torch.nn.functional.normalize(torch.randn(count, 4, generator=g), dim=-1),
        "scales": torch.rand(count, 3, generator=g) * 2 - 6,
        "opacities": torch.randn(count, generator=g) * 2,
        "sh0": torch.randn(count, 1, 3, generator=g) * 0.5,
        "shN": torch.randn(count, 15, 3, generator=g) * 0.05,
    }
    world = World()
    world.add_layer("capture", params)
    world.forget_history()
    return world


def timed(action, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="Gaussians in the world")
    parser.add_argument("--record", action="store_true", help="write scripts/results/editing.{txt,json}")
    args = parser.parse_args()

    from spatial.cameras import Cameras, intrinsics_from_fov, look_at
    from spatial.splats.colour import ColourAdjustment

    world = world_of(args.count)
    c2w = look_at(torch.tensor([[0.0, 0.0, 0.0]], dtype=torch.float64), torch.tensor([[0.0, 0.0, 5.0]],
                  dtype=torch.float64), torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)).float()
    camera = Cameras(c2w, intrinsics_from_fov(60.0, 1280, 720)[None].float(), 1280, 720)
    rect = ((400, 200), (900, 520))  # a quarter of the picture
    grade = ColourAdjustment(brightness=0.05, saturation=-0.3, temperature=0.2, opacity=0.9)
    world.select_rect(camera, *rect)
    pick = world.pick(camera, (640.5, 360.5))
    world.clear_selection()

    def select_then(action):
        def run():
            world.select_rect(camera, *rect)
            action()
            world.undo()
            world.undo()
        return run

    rows = [  # (what, seconds of the edit alone)
        ("baseline: select in box (existing)",
         timed(lambda: world.select_box(torch.tensor([-1.0, -1, 3]), torch.tensor([1.0, 1, 6])))),
        ("select rectangle", timed(lambda: world.select_rect(camera, *rect))),
        ("select rectangle, front-most only", timed(lambda: world.select_rect(camera, *rect, front_only=True))),
        ("pick (click)", timed(lambda: world.pick(camera, (640.5, 360.5)))),
        ("select similar colour", timed(lambda: world.select_similar(pick, 0.1))),
    ]
    world.select_rect(camera, *rect)
    rows += [
        ("colour preview, selection", timed(lambda: world.colour_preview(grade, "selection"))),
        ("colour grade, selection", timed(lambda: (world.adjust_colour(grade), world.undo()))),
        ("colour grade, whole layer", timed(lambda: (world.adjust_colour(grade, "capture"), world.undo()))),
    ]
    world.clear_selection()
    select = timed(lambda: (world.select_rect(camera, *rect), world.undo()))
    rows += [
        ("delete selection", timed(select_then(world.delete_selected)) - select),
        ("undo", timed(lambda: (world.undo(), world.redo())) / 2),
        ("selection to new layer", timed(select_then(world.split_selection)) - select),
        ("scale world to a measured length",
         timed(lambda: (world.scale_to_length(torch.zeros(3), torch.ones(3), 2.0), world.undo()))),
    ]
    baseline = rows[0][1]
    lines = [f"editing benchmark: {args.count:,} Gaussians (SH degree 3), {os.cpu_count()} CPU cores, "
             f"torch {torch.__version__}, {platform.processor() or platform.machine()}",
             f"{'edit':38s} {'seconds':>8s} {'x baseline':>11s} {'x 0.5 s bound':>14s}"]
    for what, seconds in rows:
        lines.append(f"{what:38s} {seconds:8.3f} {seconds / baseline:11.1f} {seconds / BOUND_SECONDS:14.2f}")
    worst = max(rows[1:], key=lambda r: r[1])
    verdict = "within" if worst[1] < BOUND_SECONDS else "OVER"
    lines.append(f"slowest edit: {worst[0]}, {worst[1]:.3f} s: {verdict} the {BOUND_SECONDS} s bound")
    print("\n".join(lines))
    if args.record:
        out = ROOT / "scripts" / "results"
        (out / "editing.txt").write_text("\n".join(lines) + "\n")
        (out / "editing.json").write_text(json.dumps({"count": args.count, "cores": os.cpu_count(),
                                                      "seconds": dict(rows), "bound_seconds": BOUND_SECONDS},
                                                     indent=2) + "\n")


if __name__ == "__main__":
    main()
