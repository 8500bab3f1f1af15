"""Benchmark real phone captures end to end: processing time, then held-out quality against training time.

    python scripts/bench_real_captures.py               # monstree and sceaux_castle, presets cpu and capture
    python scripts/bench_real_captures.py --captures monstree --presets capture --train-seconds 600 --record

For each capture in ../shared/data: `spatial process images` (timed, cached between runs), then splat training at
1/`--downscale` size for each preset until it finishes or its training steps have taken `--train-seconds`. The
held-out views are every 8th image (the 3DGS evaluation's split), fixed by `load_scene`; they are evaluated (PSNR,
SSIM, colour-corrected PSNR, LPIPS when its weights are here) when training time passes each of `--marks` seconds
and at the end, evaluation excluded from the time. The cpu preset is the baseline, measured in the same run. The
first held-out view is rendered at the end into scripts/results/real_CAPTURE_PRESET.png, to be looked at. Each
held-out view's PSNR is also split between the pixels that some training photo sees and the rest (see
`seen_by_training`): what no training photo shows can only be guessed.

Output: stdout, and scripts/results/real_captures.txt and .json with --record.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "scripts" / "results"


def processed(capture: str, cache: Path, fresh: bool) -> tuple[Path, float | None]:
    """The capture's scene folder, and the seconds processing took (None when it came from the cache)."""
    from spatial.cli import main

    scene = cache / capture
    if fresh and scene.exists():
        shutil.rmtree(scene)
    if (scene / "sparse").is_dir():
        return scene, None
    start = time.perf_counter()
    main(["process", "images", str(DATA / capture / "images"), str(scene)])
    return scene, time.perf_counter() - start


def train(scene: Path, preset: str, downscale: int, budget: float, marks: list[float], out: Path) -> dict:
    import torch

    from spatial.io import load_scene
    from spatial.training.methods import get_method

    method = get_method("splat")
    config = method.preset_config(preset)
    config.downscale, config.checkpoint_every, config.eval_every = downscale, 0, 0
    steps = method.steps(config)
    torch.manual_seed(config.seed)
    trainer = method.trainer(load_scene(scene), config, out)
    curve, pending = [], sorted(marks)
    while trainer.step_count < steps and trainer.train_seconds < budget:
        start = time.perf_counter()
        trainer.step()
        trainer.train_seconds += time.perf_counter() - start
        while pending and trainer.train_seconds >= pending[0]:
            result = trainer.evaluate()
            curve.append({"seconds": pending.pop(0), "step": trainer.step_count, "psnr": result["psnr"],
                          "ssim": result["ssim"], "cc_psnr": result["cc_psnr"]})
            print(f"  {preset}: {curve[-1]}", flush=True)
    at_mean_exposure = None
    if getattr(trainer, "gains", None) is not None:  # also scored as rendered without the photos' EXIF exposure
        gains, trainer.gains = trainer.gains, None
        at_mean_exposure = trainer.evaluate()["psnr"]
        trainer.gains = gains
    final = trainer.evaluate()
    with torch.no_grad():
        image = trainer.render_view(trainer.scene.test_ids[0]).clamp(0, 1).cpu().numpy()
    return {"preset": preset, "steps": trainer.step_count, "of_steps": steps, "train_seconds":
            round(trainer.train_seconds, 1), "eval_seconds": final["eval_seconds"], "psnr": final["psnr"],
            "ssim": final["ssim"], "cc_psnr": final["cc_psnr"], "cc_ssim": final["cc_ssim"], "lpips": final["lpips"],
            "lpips_note": final.get("lpips_note"), "curve": curve, "held_out": final["held_out"],
            "psnr_at_mean_exposure": at_mean_exposure, "per_view": seen_by_training(trainer),
            "gaussians": int(trainer.state.params["means"].shape[0]), "test_views": len(trainer.scene.test_ids),
            "image": (image * 255).round().astype(np.uint8)}


def seen_by_training(trainer) -> list[dict]:
    """Per held-out view: the share of its pixels that some training photo sees, and PSNR over those pixels and
    over the rest. A pixel is seen when the trained model's depth there, taken into a training camera, lands
    inside that photo at the depth the model renders for it (within 5%): what the training photos never show
    has to be guessed, and a held-out view at the end of a walk around the subject has much of it."""
    import torch

    from spatial.cameras import pixel_centers
    from spatial.metrics import psnr
    from spatial.splats.model import render_splats

    cams = trainer.scene.cameras  # at the trainer's image size

    def render(i: int):  # colour as evaluated [H, W, 3], depth and alpha [H, W]
        W, H = int(cams.width[i]), int(cams.height[i])
        out = render_splats(trainer.state.params, trainer.world_to_cam[i:i + 1], trainer.K[i:i + 1], W, H,
                            trainer.config.step.sh_degree, trainer.background, trainer.config.step.render)
        rgb = out.rgb[0] if trainer.gains is None else out.rgb[0] * trainer.gains[i]
        return rgb.clamp(0, 1), out.depth[0, ..., 0], out.alpha[0, ..., 0]

    def psnr_over(image, target, mask) -> float | None:  # over the pixels of `mask` [H, W]
        return psnr(image[mask], target[mask]).item() if mask.any() else None

    rows = []
    with torch.no_grad():
        depths = {j: render(j)[1].cpu() for j in trainer.scene.train_ids}
        for i in trainer.scene.test_ids:
            rgb, depth, alpha = render(i)
            H, W = depth.shape
            uv = pixel_centers(W, H, dtype=cams.K.dtype).reshape(1, -1, 2)  # [1, HW, 2]
            points = cams[i].unproject(uv, depth.cpu().reshape(1, -1))[0]  # [HW, 3] world
            seen = torch.zeros(H * W, dtype=torch.bool)
            for j, other in depths.items():
                pixel, z = (x[0] for x in cams[j].project(points))  # [HW, 2], [HW]
                inside = (z > 0) & (pixel >= 0).all(-1) & (pixel[:, 0] < other.shape[1]) & \
                    (pixel[:, 1] < other.shape[0])
                x = pixel[:, 0].clamp(0, other.shape[1] - 1).long()
                y = pixel[:, 1].clamp(0, other.shape[0] - 1).long()
                seen |= inside & ((other[y, x] - z).abs() < 0.05 * z)
            seen = seen.reshape(H, W).to(alpha.device) & (alpha > 0.5)
            target = torch.from_numpy(trainer.scene.load_image(i)).to(rgb)
            rows.append({"view": trainer.scene.image_names[i], "psnr": psnr_over(rgb, target, torch.ones_like(seen)),
                         "seen": float(seen.float().mean()), "psnr_seen": psnr_over(rgb, target, seen),
                         "psnr_unseen": psnr_over(rgb, target, ~seen)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--captures", nargs="+", default=["monstree", "sceaux_castle"])
    parser.add_argument("--presets", nargs="+", default=["cpu", "capture"],
                        help="splat presets to train, each measured (cpu is the baseline)")
    parser.add_argument("--downscale", type=int, default=4, help="train at 1/N of the photos' size")
    parser.add_argument("--train-seconds", type=float, default=600.0, help="training-time budget per run")
    parser.add_argument("--marks", type=float, nargs="+", default=[120.0, 300.0, 600.0],
                        help="training seconds at which the held-out views are evaluated")
    parser.add_argument("--fresh", action="store_true", help="process the captures again, not from the cache")
    parser.add_argument("--record", action="store_true", help="write scripts/results/real_captures.{txt,json}")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"the real captures are not at {DATA} (see its README)")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spatial" / "bench_real_captures"
    cache.mkdir(parents=True, exist_ok=True)
    import torch
    from PIL import Image

    lines = [f"real captures: training at 1/{args.downscale} size, budget {args.train_seconds:g} s of training "
             f"steps, {os.cpu_count()} CPU cores, torch {torch.__version__}; held out: every 8th image, rendered "
             "without per-image appearance, at the photo's EXIF exposure where the preset uses it ('at mean "
             "exposure': the same render at the training photos' mean exposure); cc: PSNR after each render's "
             "least-squares affine colour map onto its photo (Zip-NeRF's colour-corrected metric)"]
    records = []
    for capture in args.captures:
        scene, seconds = processed(capture, cache, args.fresh)
        took = f"{seconds:.0f} s" if seconds is not None else "cached (run with --fresh to time it)"
        lines.append(f"{capture}: processing {took}")
        for preset in args.presets:
            result = train(scene, preset, args.downscale, args.train_seconds, args.marks, cache / f"{capture}-run")
            image = result.pop("image")
            if args.record:
                Image.fromarray(image).save(RESULTS / f"real_{capture}_{preset}.png")
            marks = "  ".join(f"{c['seconds']:.0f} s: {c['psnr']:.2f} dB (cc {c['cc_psnr']:.2f})"
                              for c in result["curve"])
            lpips = f"{result['lpips']:.3f}" if result["lpips"] is not None else "n/a"
            mean = result["psnr_at_mean_exposure"]
            mean = f" (at mean exposure {mean:.2f})" if mean is not None else ""
            lines.append(f"  {preset:8s} {result['psnr']:6.2f} dB{mean}  SSIM {result['ssim']:.3f}  "
                         f"cc {result['cc_psnr']:.2f} dB  LPIPS {lpips}  {result['steps']}/{result['of_steps']} "
                         f"steps in {result['train_seconds']:.0f} s, eval {result['eval_seconds']:.0f} s  "
                         f"{result['gaussians']:,} Gaussians  {result['test_views']} held-out views   [{marks}]")
            seen = [v["psnr_seen"] for v in result["per_view"] if v["psnr_seen"] is not None]
            lines.append(f"           over pixels a training photo sees {np.mean(seen):.2f} dB; per view: " + "  ".join(
                f"{v['view']} {v['psnr']:.2f} dB (seen {100 * v['seen']:.0f}%: {dB(v['psnr_seen'])}, "
                f"unseen {dB(v['psnr_unseen'])})" for v in result["per_view"]))
            records.append({"capture": capture, "process_seconds": seconds, **result})
            print("\n".join(lines[-2:]), flush=True)
    print("\n".join(lines))
    if args.record:
        (RESULTS / "real_captures.txt").write_text("\n".join(lines) + "\n")
        (RESULTS / "real_captures.json").write_text(json.dumps(records, indent=2) + "\n")


def dB(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
