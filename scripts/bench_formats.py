"""Benchmark the splat formats on a trained world: file size, write and read time, and the render of each file
read back against the PLY's; then `--max-splats` at 50 %, 25 % and 10 % against splat-transform's `--decimate`
at the same count, on the same world and on a real capture, each measured against the full world's render.

    python scripts/bench_formats.py                     # trains the built-in default scene briefly (~5 min)
    python scripts/bench_formats.py --run outputs/RUN   # an existing run instead
    python scripts/bench_formats.py --capture-run outputs/monstree/splat --out scripts/results/formats.json

PSNR is against the full world's render, over every camera of the run's scene and over its held-out views
alone, at the training resolution; ours weighs and refines on the training views only. Ours is shown merged only
(`--refine-steps 0`), merged then refined (the default, 200 steps), and merged as a bare splat file is (no views:
opacity x area for importance, no refining); the times are for the whole reduction.
The splat-transform comparison needs scripts/node_tools.sh to have installed it (it is skipped otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FORMATS = [("PLY", "w.ply", {}), (".splat", "w.splat", {}), ("SPZ 3", "w3.spz", {"spz_version": 3}),
           ("SPZ 4", "w4.spz", {"spz_version": 4}), ("SOG", "w.sog", {}), ("compressed PLY", "w.compressed.ply", {}),
           ("glb", "w.glb", {}), ("html", "w.html", {})]  # html: written only


def train(out: Path, steps: int) -> Path:
    from spatial.scenes import make_scene
    from spatial.training.loop import run_training
    from spatial.training.methods import get_method

    config = get_method("splat").preset_config("cpu")
    config.step.steps, config.step.sh_degree, config.step.sh_degree_interval = steps, 3, steps // 4
    config.strategy.refine_stop = int(steps * 0.75)
    run_training("splat", make_scene(), out, config, resume=False, preset="cpu")
    return out


def splat_transform() -> Path | None:
    folder = os.environ.get("SPATIAL_NODE_TOOLS") or subprocess.run(
        [str(ROOT / "scripts" / "node_tools.sh")], capture_output=True, text=True).stdout.strip()
    tool = Path(folder) / "node_modules" / ".bin" / "splat-transform" if folder else None
    return tool if tool and tool.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, help="a trained run folder (default: train the default scene)")
    parser.add_argument("--steps", type=int, default=1500, help="training steps when no --run is given")
    parser.add_argument("--capture-run", type=Path, help="a run trained on a real capture: its decimation is "
                        "measured too (train one with `spatial train splat SCENE --downscale 4`)")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--pictures", type=Path, help="also save a held-out view of each world at 10 %% here: "
                        "full | splat-transform | merged | refined")
    args = parser.parse_args()

    from spatial.formats import load_splats, save_splats
    from spatial.metrics import psnr
    from spatial.trained import SplatModel, load_splat_model

    work = Path(tempfile.mkdtemp(prefix="bench-formats-"))
    run = args.run or train(work / "run", args.steps)
    model = load_splat_model(run)
    cameras = model.scene().cameras
    world = {k: v.detach() for k, v in model.params.items()}

    def render(params):
        return SplatModel(params, work, background=model.background).render(cameras).rgb

    full = render(world)
    print(f"world: {model.count:,} Gaussians, SH degree {model.sh_degree}, {len(cameras)} views of "
          f"{int(cameras.width[0])} x {int(cameras.height[0])}\n")
    rows = []
    ply_size = None
    print(f"{'format':<16}{'size':>12}{'vs PLY':>9}{'write s':>10}{'read s':>9}{'PSNR dB':>10}")
    for name, file, options in FORMATS:
        path = work / file
        t0 = time.perf_counter()
        save_splats(world, path, **options)
        t1 = time.perf_counter()
        size = path.stat().st_size
        ply_size = ply_size or size
        if file.endswith(".html"):  # a page, not read back: its size only
            rows.append({"format": name, "bytes": size, "ratio": ply_size / size, "write_s": t1 - t0})
            print(f"{name:<16}{size:>12,}{ply_size / size:>8.1f}x{t1 - t0:>10.2f}{'-':>9}{'-':>10}")
            continue
        back = load_splats(path)
        t2 = time.perf_counter()
        value = float(psnr(render(back), full))
        rows.append({"format": name, "bytes": size, "ratio": ply_size / size, "write_s": t1 - t0, "read_s": t2 - t1,
                     "psnr_vs_ply": value})
        print(f"{name:<16}{size:>12,}{ply_size / size:>8.1f}x{t1 - t0:>10.2f}{t2 - t1:>9.2f}{value:>10.2f}")

    tool = splat_transform()
    pictures = args.pictures
    lighter = {"default scene": decimation(run, work, tool, pictures and pictures / "decimation_default.png")}
    if args.capture_run:
        name = args.capture_run.name if args.capture_run.name != "splat" else args.capture_run.parent.name
        lighter[name] = decimation(args.capture_run, work, tool, pictures and pictures / f"decimation_{name}.png")
    if args.out:
        args.out.write_text(json.dumps({"gaussians": model.count, "views": len(cameras), "formats": rows,
                                        "max_splats": lighter}, indent=2) + "\n")


def decimation(run: Path, work: Path, tool: Path | None, picture: Path | None = None) -> list[dict]:
    """`--max-splats` (as a bare file, merged on the training views, and merged then refined) against
    splat-transform's `--decimate` at 50 %, 25 % and 10 % of the world of `run`, each as PSNR against the full
    world's renders over every camera of its scene and over its held-out views; `picture`: also a PNG of the
    first held-out view at 10 %: full world | splat-transform | merged | refined."""
    import torch

    from spatial.formats import load_splats, save_splats
    from spatial.metrics import psnr
    from spatial.splats.simplify import REFINE_STEPS, simplify
    from spatial.trained import SplatModel, load_splat_model

    model = load_splat_model(run)
    scene = model.scene()
    cameras = scene.cameras
    fit = cameras[scene.train_ids]  # what merging weighs and refining fits on; the held-out views are scored apart
    held = scene.test_ids
    world = {k: v.detach() for k, v in model.params.items()}
    background = torch.tensor(model.background, dtype=torch.float32)

    def render(params) -> list:  # each view's pixels: a capture's photos may differ in size
        frames = SplatModel(params, work, background=model.background).render_frames(cameras)
        return [out.rgb.reshape(-1) for out in frames]

    def scores(params) -> tuple[float, float]:  # PSNR against the full world: every view, the held-out views
        mine = render(params)
        return (float(psnr(torch.cat(mine), torch.cat(full))),
                float(psnr(torch.cat([mine[i] for i in held]), torch.cat([full[i] for i in held]))))

    full = render(world)
    config = json.loads((Path(run) / "config.json").read_text())
    print(f"\n{run}: {model.count:,} Gaussians, SH degree {model.sh_degree}, preset {config.get('preset')}, "
          f"{config['config']['step']['steps']} steps; fitted on its {len(fit)} training views; "
          f"PSNR dB over all {len(cameras)} views / over the {len(held)} held-out ones")
    print(f"{'kept':<7}{'ours, as a bare file':>26}{'ours, merged':>26}{f'ours, + {REFINE_STEPS} refining steps':>34}"
          f"{'splat-transform --decimate':>32}")
    save_splats(world, work / "full.ply")
    rows = []
    for percent in (50, 25, 10):
        count = round(model.count * percent / 100)
        row = {"percent": percent, "count": count}
        shown = [world]  # the picture: full | splat-transform | merged | refined
        for name, views, steps in (("bare", None, 0), ("merged", fit, 0), ("refined", fit, REFINE_STEPS)):
            t0 = time.perf_counter()
            ours = simplify(world, count, views, steps, background)
            shown += [ours] if name != "bare" else []
            row[f"{name}_s"] = time.perf_counter() - t0
            row[f"{name}_psnr"], row[f"{name}_held_out_psnr"] = scores(ours)
        if tool is not None:
            t0 = time.perf_counter()
            subprocess.run([str(tool), "-g", "cpu", "-w", "-q", str(work / "full.ply"), "--decimate", str(count),
                            str(work / "decimated.ply")], check=True, capture_output=True)
            row["splat_transform_s"] = time.perf_counter() - t0
            theirs = load_splats(work / "decimated.ply")
            row["splat_transform_psnr"], row["splat_transform_held_out_psnr"] = scores(theirs)
            shown.insert(1, theirs)
        if picture is not None and percent == 10:
            save_strip(shown, model, cameras[held[:1] or [0]], picture)
        theirs = cell(row, "splat_transform") if tool is not None else "(splat-transform not installed)"
        print(f"{percent:>3} %  {cell(row, 'bare'):>26}{cell(row, 'merged'):>26}{cell(row, 'refined'):>34}{theirs:>32}",
              flush=True)
        rows.append(row)
    return rows


def cell(row: dict, name: str) -> str:  # "all views / held-out views (time)"
    return f"{row[name + '_psnr']:.2f} / {row[name + '_held_out_psnr']:.2f} ({row[name + '_s']:.0f} s)"


def save_strip(worlds: list[dict], model, camera, path: Path) -> None:
    """One view of each world, side by side, as a PNG."""
    import numpy as np
    from PIL import Image

    from spatial.trained import SplatModel

    images = [next(SplatModel(w, path.parent, background=model.background).render_frames(camera)).rgb[0]
              for w in worlds]
    strip = np.concatenate([(img.clamp(0, 1).numpy() * 255).round().astype(np.uint8) for img in images], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(strip).save(path)


if __name__ == "__main__":
    main()
