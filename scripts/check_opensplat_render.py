"""One OpenSplat model, two renderers: OpenSplat's own render of a view it withheld, against ours of its PLY.

    python scripts/check_opensplat_render.py --opensplat BIN [--capture monstree] [--view IMG_1025.jpg] [--steps 200]

bench_real_captures.py scores OpenSplat's PLY with our renderer. This says how far that render is from the one
OpenSplat itself shows for the same model: it trains OpenSplat on the capture's scene folder (as processed by the
benchmark, in its cache) with `--val-image VIEW --val-render`, at the benchmark's 1/4 size and without its
coarse-to-fine schedule (`--num-downscales 0`, so both renders are at one size), then renders its PLY at that
view with our renderer on its background. Prints PSNR of ours against theirs, and of each against the photo;
writes the three side by side to scripts/results/opensplat_render_check.png.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_real_captures as bench  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--opensplat", type=Path, required=True, help="OpenSplat's binary (CPU build)")
    parser.add_argument("--capture", default="monstree")
    parser.add_argument("--view", default="IMG_1025.jpg", help="the view OpenSplat withholds and renders")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--downscale", type=int, default=4)
    args = parser.parse_args()
    cache = Path.home() / ".cache" / "spatial" / "bench_real_captures"
    scene = cache / args.capture
    if not (scene / "sparse").is_dir():
        raise SystemExit(f"{scene}: not processed yet; run scripts/bench_real_captures.py --captures {args.capture}")
    out = cache / f"{args.capture}-render-check"
    shutil.rmtree(out, ignore_errors=True)
    (out / "val").mkdir(parents=True)
    with open(out / "opensplat.log", "w") as log:
        subprocess.run([str(args.opensplat), str(scene), "--cpu", "--keep-crs", "-d", str(args.downscale),
                        "--num-downscales", "0", "-n", str(args.steps), "--val-image", args.view,
                        "--val-render", str(out / "val"), "-o", str(out / "final.ply")],
                       check=True, stdout=log, stderr=subprocess.STDOUT)
    _, trainer = bench.score_peer(scene, out / "final.ply", args.downscale, out / "eval")
    i = trainer.scene.image_names.index(args.view)
    with torch.no_grad():
        ours = trainer.render_view(i).clamp(0, 1).cpu().numpy()
    theirs = np.asarray(Image.open(out / "val" / f"{args.steps}.png").convert("RGB")).astype(np.float32) / 255
    photo = trainer.scene.load_image(i)
    if ours.shape != theirs.shape:
        raise SystemExit(f"sizes differ: ours {ours.shape}, OpenSplat's {theirs.shape}")
    psnr = lambda a, b: -10 * np.log10(float(((a - b) ** 2).mean()))  # noqa: E731
    print(f"{args.capture} {args.view} after {args.steps} steps at 1/{args.downscale}: ours vs OpenSplat's render "
          f"{psnr(ours, theirs):.2f} dB; against the photo: ours {psnr(ours, photo):.2f} dB, OpenSplat's "
          f"{psnr(theirs, photo):.2f} dB")
    image = np.concatenate([ours, theirs, photo], 1)
    Image.fromarray((image * 255).round().astype(np.uint8)).save(bench.RESULTS / "opensplat_render_check.png")


if __name__ == "__main__":
    main()
