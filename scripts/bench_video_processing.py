"""Benchmark `spatial process video` on a phone-style video: time per stage, frames registered, pose accuracy.

    python scripts/bench_video_processing.py                 # 50 frames at 1920x1080, default settings
    python scripts/bench_video_processing.py --frames 150 --variants default every-frame keyframes-2
    python scripts/bench_video_processing.py --frames 100 --video-frames 150   # 100 frames of the 150-frame walk

The video is the built-in facade scene rendered along a handheld path (a sideways walk with a little sway and
shake, 60 degree horizontal field of view, H.264 at 30 fps), cached beside the built-in scenes. Its true cameras are
held back and compared after a similarity alignment, as in scripts/bench_sfm.py. Each variant is a set of
SfMConfig settings; `default` is what `spatial process video` does today, `every-frame` the same with every frame
mapped (as before SfMConfig.keyframe_step), `keyframes-2` and `keyframes-4` with every other or every fourth frame
mapped (the default: 2 up to 99 frames, 4 from 100), `1600px` with features
found at the photo-set size, `colmap-ba` with that size, every frame mapped and COLMAP's own bundle adjustment
schedule (how photo sets are processed, and videos were before SfMConfig.fast_mapping).

Output: stdout, and with --record scripts/results/video_processing.txt (50 frames) or
video_processing_N.txt (N frames).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "default": {},
    "every-frame": {"keyframe_step": 1},  # every frame mapped, as videos were before SfMConfig.keyframe_step
    "keyframes-2": {"keyframe_step": 2},  # every other frame mapped (the default for any count before 100)
    "keyframes-4": {"keyframe_step": 4},  # every fourth frame mapped
    "1600px": {"max_image_size": 1600},  # features at the photo-set size, as videos had before 1024
    "colmap-ba": {"fast_mapping": False, "max_image_size": 1600, "keyframe_step": 1},  # as photo sets are processed
    "4096": {"max_features": 4096},
    "global": {"mapper": "global"},
}


def handheld_video(frames: int, width: int, height: int) -> tuple[Path, object]:
    """The rendered video (cached) and its true cameras."""
    import torch

    from spatial.cameras import Cameras, intrinsics_from_fov, look_at
    from spatial.scenes import cache_dir, facade
    from spatial.scenes.generate import render_view
    from spatial.video_out import write_video

    t = torch.linspace(0, 1, frames, dtype=torch.float64)
    shake = torch.stack([torch.sin(37 * t), torch.sin(23 * t + 1), torch.sin(29 * t + 2)], -1) * 0.01
    eye = torch.stack([-1.0 + 2.0 * t, -2.3 + 0.1 * torch.sin(2 * math.pi * t), 1.1 + 0.05 * torch.sin(9 * t)], -1)
    target = torch.stack([0.4 * eye[:, 0], torch.full_like(t, 2.5), torch.full_like(t, 1.0)], -1) + shake
    c2w = look_at(eye + shake, target, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    cams = Cameras(c2w.float(), intrinsics_from_fov(60, width, height).expand(frames, 3, 3).clone(), width, height)
    path = cache_dir().parent / "videos" / f"facade-handheld-{frames}-{width}x{height}.mp4"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        prims = facade.primitives()
        start = time.time()
        pictures = []
        for i in range(frames):
            rgb = render_view(prims, cams, i, 1)["rgb"]
            pictures.append((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
            print(f"rendered frame {i + 1}/{frames} ({time.time() - start:.0f} s)", end="\r", flush=True)
        print()
        write_video(pictures, path, fps=30)  # written whole or not at all
    return path, cams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=50, help="frames kept from the video")
    parser.add_argument("--video-frames", type=int, help="frames of the rendered video (default: --frames); "
                        "more spreads the kept frames evenly over the same walk")
    parser.add_argument("--size", type=int, nargs=2, default=[1920, 1080], metavar=("WIDTH", "HEIGHT"))
    parser.add_argument("--variants", nargs="+", default=["default"], choices=sorted(VARIANTS))
    parser.add_argument("--record", action="store_true",
                        help="write scripts/results/video_processing.txt (video_processing_N.txt for N frames)")
    args = parser.parse_args()

    from spatial import load_scene
    from spatial.process.alignment import pose_errors
    from spatial.process.pipeline import process_video
    from spatial.process.sfm import SfMConfig

    video_frames = args.video_frames or args.frames
    video, truth = handheld_video(video_frames, *args.size)
    of = f" (of {video_frames})" if video_frames != args.frames else ""
    lines = [f"spatial process video on {args.frames} frames{of} of a handheld {args.size[0]}x{args.size[1]} video "
             "of the facade (2 CPU cores)"]
    for name in args.variants:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.time()
            manifest = process_video(video, Path(tmp) / "scene", frames=args.frames, config=SfMConfig(**VARIANTS[name]))
            total = time.time() - start
            scene = load_scene(Path(tmp) / "scene")
        ids = [int(Path(name).stem[6:12]) for name in scene.image_names]  # frame_000123.png: the frame's index
        errors = pose_errors(scene.cameras.cam_to_world, truth.cam_to_world[ids])
        s = manifest["seconds"]
        line = (f"  {name:8} {VARIANTS[name] or 'SfMConfig()'}: registered {manifest['images']['registered']}/"
                f"{manifest['source']['frames_kept']} kept of {manifest['source']['frames_read']}  "
                + "  ".join(f"{k} {v:.1f} s" for k, v in s.items()) + f"  (wall {total:.1f} s)")
        line += (f"  centre err {100 * errors['center_error_max']:.2f}%  rot err "
                     f"{errors['rotation_error_max_deg']:.2f} deg")
        lines.append(line)
        print(line, flush=True)
    if args.record:
        name = "video_processing.txt" if args.frames == 50 else f"video_processing_{args.frames}.txt"
        (ROOT / "scripts" / "results" / name).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
