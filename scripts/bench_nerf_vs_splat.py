"""NeRF and splats on the same scene: test PSNR/SSIM and training time of `spatial train nerf` and
`spatial train splat`, each with its cpu preset, on the default built-in orbit scene.

    python scripts/bench_nerf_vs_splat.py                          # both, as the commands run them
    python scripts/bench_nerf_vs_splat.py --out scripts/results/nerf_vs_splat.json

Each method runs as its own `spatial train ... --preset cpu` process (what a user types), and the
figures come from the run's eval.json: PSNR and SSIM on the held-out views, seconds of training
(the loop only), seconds of evaluation, and the wall time of the whole command (loading, training,
evaluation, export). The NeRF target on a 2-core CPU:
at least 24 dB within 15 minutes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train(method: str, scene: Path, out: Path, test_views: int) -> dict:
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "spatial", "train", method, str(scene), "--preset", "cpu",
                           "--out", str(out)], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"spatial train {method} failed:\n{proc.stderr[-3000:]}")
    result = json.loads((out / "eval.json").read_text())
    return {"psnr": round(result["psnr"], 3), "ssim": round(result["ssim"], 4),
            "train_seconds": result["train_seconds_this_session"], "command_seconds": round(time.time() - start, 1),
            "eval_seconds": round(result["eval_seconds_per_image"] * test_views, 1),
            "peak_memory_mb": result["peak_memory_mb"], "steps": result["step"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["nerf", "splat"], choices=["nerf", "splat"])
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here (a .txt beside it); "
                        "with fewer --methods, the other method's earlier figures there are kept")
    args = parser.parse_args()

    from spatial.io import load_scene
    from spatial.scenes import make_scene

    scene = make_scene("orbit", "default")
    test_views = len(load_scene(scene).test_ids)
    runs = json.loads(args.out.read_text()) if args.out and args.out.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods:
            runs[method] = train(method, scene, Path(tmp) / method, test_views)
            r = runs[method]
            print(f"{method:6s} test PSNR {r['psnr']:.2f} dB  SSIM {r['ssim']:.3f}  "
                  f"trained in {r['train_seconds']:.0f} s ({r['steps']} steps; "
                  f"{r['command_seconds']:.0f} s for the whole command)", flush=True)
    lines = ["orbit default scene (256x192, 42 training and 6 test views), cpu presets, 2 CPU threads"]
    for method, r in runs.items():
        lines.append(f"  {method:6s} {r['psnr']:6.2f} dB  SSIM {r['ssim']:.3f}  {r['train_seconds']:6.0f} s training  "
                     f"{r['eval_seconds']:4.0f} s evaluation  {r['command_seconds']:6.0f} s command  "
                     f"peak {r['peak_memory_mb']:.0f} MB")
    if "nerf" in runs:
        r = runs["nerf"]
        met = r["psnr"] >= 24.0 and r["command_seconds"] <= 15 * 60
        lines.append(f"NeRF target (>= 24 dB within 15 minutes): {'met' if met else 'NOT met'}")
    print("\n".join(lines))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(runs, indent=2) + "\n")
        args.out.with_suffix(".txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
