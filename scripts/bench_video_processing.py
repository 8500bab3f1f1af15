"""Benchmark `spatial process video` on a phone-style video: time per stage, frames registered, pose accuracy.

    python scripts/bench_video_processing.py                 # 50 frames at 1920x1080, default settings
    python scripts/bench_video_processing.py --frames 150 --variants default every-frame keyframes-2
    python scripts/bench_video_processing.py --frames 100 --video-frames 150   # 100 frames of the 150-frame walk
    python scripts/bench_video_processing.py --frames 120 --video-frames 150 --phone   # as a phone records it

The video is the built-in facade scene rendered along a handheld path (a sideways walk with a little sway and
shake, 60 degree horizontal field of view, H.264 at 30 fps), cached beside the built-in scenes. Its true cameras are
held back and compared after a similarity alignment, as in scripts/bench_sfm.py. Each variant is a set of
SfMConfig settings; `default` is what `spatial process video` does today, `every-frame` the same with every frame
mapped (as before SfMConfig.keyframe_step), `keyframes-2` and `keyframes-4` with every other or every fourth frame
mapped (the default: 2 up to 99 frames, 4 from 100), `1600px` with features
found at the photo-set size, `colmap-ba` with that size, every frame mapped and COLMAP's own bundle adjustment
schedule (how photo sets are processed, and videos were before SfMConfig.fast_mapping).

With --phone the same video is made to look as a phone records it (cached too): auto-exposure and white balance
that drift, motion blur along each frame's image motion, one frame in ten shaken hard, rolling shutter and noise.

Output: stdout, and with --record scripts/results/video_processing.txt (50 frames) or
video_processing_N.txt (N frames); video_processing_phone[_N].txt with --phone.
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


PHONE_SEED = 0


def phone_style(clean: Path, cams, path: Path) -> Path:
    """`clean` as a phone records it (cached at `path`): auto-exposure and white balance that drift, motion blur
    over half of each frame's time along its image motion, 10% of frames shaken harder (12-30 px of blur at
    1080p), rolling shutter (rows read out over 60% of a frame's time), sensor noise, and H.264 once more."""
    if path.exists():
        return path
    import av
    import torch
    import torch.nn.functional as F

    from spatial.video_out import write_video

    frames, W, H = len(cams), int(cams.width[0]), int(cams.height[0])
    rng = np.random.default_rng(PHONE_SEED)
    # Image motion of each frame's centre, in pixels per frame: the point 4.8 units ahead (the facade's
    # distance) projected into the frames before and after.
    c2w = cams.cam_to_world.double()
    ahead = (c2w[:, :3, 3] + 4.8 * c2w[:, :3, 2]).float()  # [F, 3]
    uv = torch.stack([cams.project(ahead[i:i + 1])[0][:, 0].double() for i in range(frames)])  # [F, F, 2]: i in j
    motion = np.array([(uv[i, min(i + 1, frames - 1)] - uv[i, max(i - 1, 0)]).numpy()
                       / (min(i + 1, frames - 1) - max(i - 1, 0)) for i in range(frames)])  # [F, 2]
    jerk = np.zeros((frames, 2))
    hard = rng.choice(frames, frames // 10, replace=False)
    angle = rng.uniform(0, 2 * np.pi, len(hard))
    jerk[hard] = rng.uniform(12, 30, (len(hard), 1)) * np.stack([np.cos(angle), np.sin(angle)], -1) * W / 1920
    t = np.linspace(0, 1, frames)
    gain = 2 ** (0.35 * np.sin(2 * np.pi * 0.8 * t + 0.3) + 0.1 * np.sin(2 * np.pi * 3.1 * t))
    balance = np.stack([1 + 0.04 * np.sin(2 * np.pi * 0.6 * t), np.ones(frames),
                        1 - 0.04 * np.sin(2 * np.pi * 0.6 * t + 0.5)], -1)  # [F, 3]
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32),
                            indexing="ij")
    readout = (ys / H - 0.5) * 0.6  # [H, W]: each row's time from the middle row's, in frames

    def degrade(i: int, rgb: np.ndarray) -> np.ndarray:
        image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255  # [1, 3, H, W]
        blur = np.hypot(*(0.5 * motion[i] + jerk[i]))
        taps = int(np.clip(np.ceil(blur / 1.5), 1, 24))
        out = torch.zeros_like(image)
        for s in np.linspace(-0.5, 0.5, taps) if taps > 1 else [0.0]:
            dx = float(motion[i, 0]) * (readout + 0.5 * s) + float(jerk[i, 0]) * s  # [H, W]
            dy = float(motion[i, 1]) * (readout + 0.5 * s) + float(jerk[i, 1]) * s
            grid = torch.stack([(xs - dx + 0.5) / W * 2 - 1, (ys - dy + 0.5) / H * 2 - 1], -1)[None]
            out += F.grid_sample(image, grid, align_corners=False, padding_mode="border") / taps
        linear = out[0].permute(1, 2, 0).numpy() ** 2.2 * gain[i] * balance[i]
        srgb = np.clip(linear, 0, 1) ** (1 / 2.2) + rng.normal(0, 0.01, linear.shape)
        return (np.clip(srgb, 0, 1) * 255 + 0.5).astype(np.uint8)

    def frames_of(video: Path):
        with av.open(str(video)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                print(f"phone-style frame {i + 1}/{frames}", end="\r", flush=True)
                yield degrade(i, frame.to_ndarray(format="rgb24")[:H, :W])
        print()

    write_video(frames_of(clean), path, fps=30)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=50, help="frames kept from the video")
    parser.add_argument("--video-frames", type=int, help="frames of the rendered video (default: --frames); "
                        "more spreads the kept frames evenly over the same walk")
    parser.add_argument("--size", type=int, nargs=2, default=[1920, 1080], metavar=("WIDTH", "HEIGHT"))
    parser.add_argument("--variants", nargs="+", default=["default"], choices=sorted(VARIANTS))
    parser.add_argument("--phone", action="store_true", help="the video as a phone records it: drifting exposure "
                        "and white balance, motion blur, some frames shaken hard, rolling shutter, noise")
    parser.add_argument("--record", action="store_true",
                        help="write scripts/results/video_processing.txt (video_processing_N.txt for N frames; "
                        "video_processing_phone[_N].txt with --phone)")
    args = parser.parse_args()

    from spatial import load_scene
    from spatial.process.alignment import pose_errors
    from spatial.process.pipeline import process_video
    from spatial.process.sfm import SfMConfig

    video_frames = args.video_frames or args.frames
    video, truth = handheld_video(video_frames, *args.size)
    if args.phone:
        video = phone_style(video, truth, video.with_name(video.name.replace("handheld", "handheld-phone")))
    of = f" (of {video_frames})" if video_frames != args.frames else ""
    kind = "phone-style (drifting exposure and white balance, motion blur, rolling shutter, noise) " * args.phone
    lines = [f"spatial process video on {args.frames} frames{of} of a {kind}handheld {args.size[0]}x{args.size[1]} "
             "video of the facade (2 CPU cores)"]
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
        name = "video_processing" + "_phone" * args.phone + (f"_{args.frames}" if args.frames != 50 else "") + ".txt"
        (ROOT / "scripts" / "results" / name).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
