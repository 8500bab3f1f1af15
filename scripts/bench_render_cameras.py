"""Stereo and 360-degree videos against the flat one: the time to render the same camera path with each camera.

    python scripts/bench_render_cameras.py                        # outputs/demo (./scripts/demo.sh makes it)
    python scripts/bench_render_cameras.py --run RUN --out scripts/results/render_cameras.json --pictures docs/images

Each camera of `spatial render --camera` renders the run's default path (an orbit of 120 frames) to an H.264 mp4
at the command's default sizes (for the default scene: a flat 256x192 frame; stereo, two such eyes; equirect, a
384x192 panorama; vr180, two 192x192 half-panoramas), through the command itself, so the time is what a user
waits for: loading the model, rendering, encoding. The cameras are timed in turn, `--repeats` rounds, and the
median of each is compared with the flat video's. The target (issue #41): a stereo or 360 video takes at most 3x
the flat one's time. `--pictures` saves the 30th frame of each video as render_camera_<name>.png.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAMERAS = ("pinhole", "stereo-sbs", "stereo-tb", "equirect", "vr180")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=ROOT / "outputs" / "demo", help="a trained run folder")
    parser.add_argument("--frames", type=int, default=120, help="frames of the orbit")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the cameras; the median is reported")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    parser.add_argument("--pictures", type=Path, default=None, help="save one frame of each video here")
    args = parser.parse_args()
    if not (args.run / "checkpoints").is_dir():
        sys.exit(f"{args.run}: not a training run; ./scripts/demo.sh trains the default scene into outputs/demo")

    import torch

    from spatial.cli.render import Render
    from spatial.video_out import read_video

    work = Path(tempfile.mkdtemp())
    seconds: dict[str, list[float]] = {c: [] for c in CAMERAS}
    sizes = {}
    for _ in range(args.repeats):
        for camera in CAMERAS:
            out = work / f"{camera}.mp4"
            start = time.perf_counter()
            Render(args.run, camera=camera, frames=args.frames, out=out, device="cpu").main()
            seconds[camera].append(time.perf_counter() - start)
            if camera not in sizes:
                video = read_video(out)
                sizes[camera] = f"{video.shape[2]}x{video.shape[1]}"
                if args.pictures:
                    from PIL import Image

                    args.pictures.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(video[min(30, len(video) - 1)]).save(args.pictures / f"render_camera_{camera}.png")
    flat = statistics.median(seconds["pinhole"])
    run = args.run.resolve().relative_to(ROOT) if args.run.resolve().is_relative_to(ROOT) else args.run
    lines = [f"{args.frames}-frame orbit of {run}, H.264 mp4, {torch.get_num_threads()} threads, "
             f"{platform.processor() or platform.machine()}; each time: `spatial render` from loading to the last "
             f"frame written, median of {args.repeats} rounds",
             f"{'camera':12} {'frame':>9} {'seconds':>9} {'per frame':>10} {'vs flat':>8}"]
    rows = []
    for camera in CAMERAS:
        s = statistics.median(seconds[camera])
        rows.append({"camera": camera, "frame": sizes[camera], "seconds": round(s, 2),
                     "all_seconds": [round(x, 2) for x in seconds[camera]], "ratio_to_flat": round(s / flat, 2)})
        lines.append(f"{camera:12} {sizes[camera]:>9} {s:9.2f} {s / args.frames:10.3f} {s / flat:7.2f}x")
    worst = max(r["ratio_to_flat"] for r in rows if r["camera"] != "pinhole")
    lines.append(f"slowest stereo or 360 video: {worst:.2f}x the flat one (target <= 3x: "
                 f"{'met' if worst <= 3 else 'NOT met'})")
    print("\n".join(lines))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"run": str(args.run), "frames": args.frames, "rows": rows}, indent=1) + "\n")
        args.out.with_suffix(".txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
