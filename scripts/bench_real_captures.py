"""Benchmark real phone captures end to end: processing time, then held-out quality against training time.

    python scripts/bench_real_captures.py --opensplat BIN --record   # the three captures, auto, cpu and nerf:auto
    python scripts/bench_real_captures.py --captures monstree --presets capture --train-seconds 600

The captures: monstree and sceaux_castle from ../shared/data, processed with `spatial process images`, and
facade_phone, the built-in facade filmed along a handheld walk as a phone records it (drifting exposure and white
balance, motion blur, rolling shutter, noise; scripts/bench_video_processing.py --phone makes it), 50 frames of 150
processed with `spatial process video` (at 960x540, trained at half the `--downscale` asked: the same size as a
1080p video at it); its true cameras are known, and their error is printed. Processing is timed
and cached between runs. Then each preset trains at 1/`--downscale` size (a splat preset, or `nerf:PRESET` for
the NeRF) until it finishes or its training steps have taken `--train-seconds`. The
held-out views are every 8th image (the 3DGS evaluation's split), fixed by `load_scene`; they are evaluated (PSNR,
SSIM, colour-corrected PSNR, LPIPS when its weights are here) when training time passes each of `--marks` seconds
and at the end, evaluation excluded from the time. The cpu preset is the baseline, measured in the same run. The
first held-out view is rendered at the end into scripts/results/real_CAPTURE_PRESET.png, to be looked at. Each
held-out view's PSNR is also split between the pixels that some training photo sees and the rest (see
`seen_by_training`): what no training photo shows can only be guessed.

OpenSplat 1.1.5 (CPU build; `--opensplat BIN`, and without it the steps to build it are printed) is trained beside
ours on a copy of each scene folder without the held-out photos, at the same downscale, with both cores: once with
its defaults for as many steps as fill the whole training-time budget, `--train-seconds` of wall time with its
loading included (it saves every `--opensplat-save-every` steps and is stopped at the budget; the last file saved
in time is scored), and once for as many steps as our `auto` preset's run took (or the first preset's; its time
stated). Its PLY is rendered at the held-out cameras by our renderer, on the
background it trained on, and scored by our evaluator, exactly as our models are; its render at a training view
is saved beside ours, to be looked at.

Each splat preset is trained from `--seeds` seeds (two by default) and its row is their mean, each seed's score
printed beside it: sceaux_castle holds out two photos, and one run's score there moved by more than the presets
differ (cpu 14.91 and 14.52 dB, capture 14.50 and 14.71 with seeds 0 and 1). The NeRF is trained once, from its
preset's seed. Where `auto` picks a preset that is also listed (cpu for the phone video), it is trained once and
shown in both rows. Each capture ends with a `targets:` line: `auto` against cpu (no lower), OpenSplat at equal
time (>= 1 dB higher) and at equal steps (no lower), and the NeRF's `auto` (within 2 dB).

Output: stdout, and with --record scripts/results/real_captures.txt and .json (with `_N_steps` for --steps N, and
the captures' names when they are not the three).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "scripts" / "results"


def processed(capture: str, cache: Path, fresh: bool) -> tuple[Path, float | None, str]:
    """The capture's scene folder, the seconds processing took (None when it came from the cache) and a note on
    its cameras (for the phone video, whose true cameras are known: their error after a similarity alignment)."""
    from spatial.cli import main

    scene = cache / capture
    if fresh and scene.exists():
        shutil.rmtree(scene)
    seconds = None
    if not (scene / "sparse").is_dir():
        start = time.perf_counter()
        if capture == PHONE_VIDEO:
            main(["process", "video", str(phone_video()[0]), str(scene), "--frames", str(PHONE_FRAMES)])
        else:
            main(["process", "images", str(DATA / capture / "images"), str(scene)])
        seconds = time.perf_counter() - start
    return scene, seconds, camera_errors(scene) if capture == PHONE_VIDEO else ""


PHONE_VIDEO = "facade_phone"  # the built-in facade filmed as a phone records it (scripts/bench_video_processing.py)
PHONE_FRAMES = 50  # frames kept of its 150, as `bench_video_processing.py --phone --video-frames 150` measures
DEFAULT_CAPTURES = ["monstree", "sceaux_castle", PHONE_VIDEO]
PHONE_SIZE = (960, 540)  # half of 1080p, so that its one-time render takes minutes, not most of an hour
PHONE_DOWNSCALE = 2  # trained at 1/2 of that: the size 1080p has at the default --downscale 4


def phone_video():
    """The phone-style facade video (rendered and degraded once, then cached) and its true cameras."""
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_video_processing import handheld_video, phone_style

    clean, truth = handheld_video(150, *PHONE_SIZE)
    return phone_style(clean, truth, clean.with_name(clean.name.replace("handheld", "handheld-phone"))), truth


def camera_errors(scene: Path) -> str:
    from spatial.io import load_scene
    from spatial.process.alignment import pose_errors

    loaded = load_scene(scene)
    ids = [int(Path(name).stem[6:12]) for name in loaded.image_names]  # frame_000123.png: the frame's index
    errors = pose_errors(loaded.cameras.cam_to_world, phone_video()[1].cam_to_world[ids])
    return (f"{len(ids)} frames; cameras against the truth: centre error {100 * errors['center_error_max']:.2f}% of "
            f"the path, rotation error {errors['rotation_error_max_deg']:.2f} deg")


def train(scene: Path, entry: str, downscale: int, budget: float, marks: list[float], out: Path,
          steps: int | None = None, seed: int | None = None) -> dict:
    """Train `entry` (a splat preset, or `nerf:PRESET`) until it finishes or its steps have taken `budget` s; with
    `seed`, from that seed instead of the preset's."""
    import torch

    from spatial.io import load_scene
    from spatial.training.methods import get_method

    name, preset = entry.split(":", 1) if entry.startswith("nerf:") else ("splat", entry)
    method = get_method(name)
    config = method.preset_config(preset, scene)  # `auto` judges the scene as `spatial train` does
    config.downscale, config.checkpoint_every, config.eval_every = downscale, 0, 0
    if steps is not None:  # the preset cut short (its schedule otherwise unchanged), as `--step.steps N` does
        if name == "nerf":
            config.steps = steps
        else:
            config.step.steps = steps
    steps = method.steps(config)
    config.seed = config.seed if seed is None else seed
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
            print(f"  {entry}: {curve[-1]}", flush=True)
    at_mean_exposure = None
    if getattr(trainer, "gains", None) is not None:  # also scored as rendered without the photos' EXIF exposure
        gains, trainer.gains = trainer.gains, None
        at_mean_exposure = trainer.evaluate()["psnr"]
        trainer.gains = gains
    at_nearest = None  # also scored with the appearance learned for the training photo nearest each held-out one
    holder = trainer.config.step.appearance if name == "splat" else trainer.config
    field = "held_out" if name == "splat" else "held_out_appearance"
    learned = config.step.appearance.per_image if name == "splat" else config.model.field.appearance_dim > 0
    if learned:
        chosen = getattr(holder, field)
        setattr(holder, field, "nearest")
        at_nearest = trainer.evaluate()["psnr"]
        setattr(holder, field, chosen)
    final = trainer.evaluate()
    with torch.no_grad():
        image = trainer.render_view(trainer.scene.test_ids[0]).clamp(0, 1).cpu().numpy()
    label = entry if preset != "auto" else f"{entry}:{method.preset_name(preset, scene)}"
    return {"preset": label, "seed": config.seed, "steps": trainer.step_count, "of_steps": steps, "train_seconds":
            round(trainer.train_seconds, 1), "eval_seconds": final["eval_seconds"], "psnr": final["psnr"],
            "ssim": final["ssim"], "cc_psnr": final["cc_psnr"], "cc_ssim": final["cc_ssim"], "lpips": final["lpips"],
            "lpips_note": final.get("lpips_note"), "curve": curve, "held_out": final["held_out"],
            "psnr_at_mean_exposure": at_mean_exposure, "psnr_at_nearest_appearance": at_nearest,
            "test_views": len(trainer.scene.test_ids),
            "gaussians": int(trainer.state.params["means"].shape[0]) if name == "splat" else None,
            "image": (image * 255).round().astype(np.uint8), "trainer": trainer}


OPENSPLAT_BACKGROUND = (0.6130, 0.0101, 0.3984)  # what OpenSplat composites its renders on (model.hpp; not learned)
OPENSPLAT_BUILD = """OpenSplat is not measured: pass --opensplat PATH_TO_BINARY. To build its CPU version (about 10
minutes on 2 cores; nothing is downloaded at run time, and the build stays outside this repository):
  1. its source (pierotofy/OpenSplat, 1.1.5) and nlohmann/json v3.11.3, jlblancoc/nanoflann v1.5.5,
     jarro2783/cxxopts v3.2.0, each in a folder of its own;
  2. apt-get install -y --no-install-recommends libopencv-dev cmake;
  3. cmake OPENSPLAT_SRC -DGPU_RUNTIME=CPU -DCMAKE_BUILD_TYPE=Release \\
       -DCMAKE_PREFIX_PATH=$(.venv/bin/python -c 'import torch;print(torch.utils.cmake_prefix_path)') \\
       -DFETCHCONTENT_FULLY_DISCONNECTED=ON -DFETCHCONTENT_SOURCE_DIR_NLOHMANN_JSON=JSON_SRC \\
       -DFETCHCONTENT_SOURCE_DIR_NANOFLANN=NANOFLANN_SRC -DFETCHCONTENT_SOURCE_DIR_CXXOPTS=CXXOPTS_SRC
     then make -j2, which builds ./opensplat."""


def without_held_out(scene_path: Path, folder: Path) -> Path:
    """A COLMAP scene folder of the training photos alone (OpenSplat trains on every image it is given): the
    images linked, the model written by our COLMAP writer from the loaded scene's training cameras and points."""
    from spatial.io import load_scene, write_colmap

    scene = load_scene(scene_path)
    train = scene.subset(scene.train_ids)
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "images").mkdir(parents=True)
    for path, name in zip(train.image_paths, train.image_names):
        (folder / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "images" / name).symlink_to(path.resolve())
    write_colmap(train, folder / "sparse" / "0")
    return folder


def run_opensplat(binary: Path, scene: Path, out: Path, downscale: int, steps: int, budget: float | None,
                  save_every: int) -> dict:
    """Train OpenSplat on `scene` for `steps`, or until `budget` seconds of wall time have passed (then the last
    PLY it saved in time is kept). Returns the PLY, the steps it holds and the seconds they took."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.ply"):
        old.unlink()
    command = [str(binary), str(scene), "--cpu", "--keep-crs", "-d", str(downscale), "-n", str(steps),
               "-o", str(out / "final.ply")]
    if budget is not None:
        command += ["-s", str(save_every)]
    log = open(out / "opensplat.log", "w")
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=out, start_new_session=True)
    saved: tuple[int, float, Path] | None = None  # (step, seconds, file) of the newest PLY saved in time
    try:
        while process.poll() is None:
            time.sleep(0.5)
            elapsed = time.perf_counter() - start
            for ply in sorted(out.glob("final_*.ply"), key=lambda path: int(path.stem[6:])):
                step = _ply_step(ply)
                if step is None:
                    continue  # still being written
                if (budget is None or elapsed <= budget) and (saved is None or step > saved[0]):
                    if saved is not None:
                        saved[2].unlink()
                    saved = (step, elapsed, ply.rename(out / f"kept-{step}.ply"))
                else:
                    ply.unlink()
            if budget is not None and elapsed > budget:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait()
                break
    finally:
        log.close()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    seconds = time.perf_counter() - start
    if process.returncode not in (0, -signal.SIGTERM):
        raise SystemExit(f"OpenSplat failed (exit {process.returncode}); see {out / 'opensplat.log'}")
    final = out / "final.ply"
    if budget is None or (final.is_file() and process.returncode == 0):
        return {"ply": final, "steps": steps, "seconds": round(seconds, 1)}
    if saved is None:
        raise SystemExit(f"OpenSplat saved nothing within {budget:g} s; see {out / 'opensplat.log'}")
    step, at, ply = saved
    return {"ply": ply, "steps": step, "seconds": round(at, 1)}


def _ply_step(ply: Path) -> int | None:
    """The iteration OpenSplat wrote in the PLY's header comment, once the file is complete."""
    try:
        with open(ply, "rb") as f:
            head = f.read(4096).decode("latin-1")
        count = int(head.split("element vertex ")[1].split()[0])
        body = ply.stat().st_size - (head.index("end_header") + len("end_header\n"))
        properties = head.split("end_header")[0].count("property float")
        if body < count * properties * 4:
            return None  # still being written
        return int(head.split("at iteration ")[1].split()[0])
    except (OSError, IndexError, ValueError):
        return None


def score_peer(scene: Path, ply: Path, downscale: int, out: Path, masks: dict) -> tuple[dict, object]:
    """A peer's PLY scored by our evaluator: a splat trainer on the same scene and downscale, holding the peer's
    Gaussians and its background instead of its own, evaluated and split by the pixels of `masks` like ours."""
    import torch

    from spatial.formats import load_splats
    from spatial.io import load_scene
    from spatial.render import RenderOptions
    from spatial.splats.model import sh_degree_of
    from spatial.training.methods import get_method

    method = get_method("splat")
    config = method.preset_config("cpu")
    config.downscale, config.checkpoint_every, config.eval_every = downscale, 0, 0
    params = load_splats(ply)
    config.step.sh_degree = sh_degree_of(params)
    config.step.render = RenderOptions(sh_degree=config.step.sh_degree, antialiased=False)
    trainer = method.trainer(load_scene(scene), config, out)
    trainer.state.params = {k: v.to(trainer.device) for k, v in params.items()}
    trainer.background = torch.tensor(OPENSPLAT_BACKGROUND, dtype=torch.float32, device=trainer.device)
    trainer.gains = None
    result = trainer.evaluate()
    result["per_view"] = per_view(trainer, masks if masks is not None else seen_by_training(trainer))
    result["gaussians"] = int(params["means"].shape[0])
    return result, trainer


def seen_by_training(trainer) -> dict[int, object]:
    """Per held-out view `i`, its pixels `[H, W]` bool that some training photo sees, by a trained splat model's
    geometry. A pixel is seen when the model's depth there, taken into a training camera, lands inside that photo at
    the depth the model renders for it (within 5%): what the training photos never show has to be guessed, and a
    held-out view at the end of a walk around the subject has much of it. The masks of a capture's first splat run
    are used for every row of that capture, so that all are scored over the same pixels."""
    import torch

    from spatial.cameras import pixel_centers
    from spatial.splats.model import render_splats

    cams = trainer.scene.cameras  # at the trainer's image size

    def render(i: int):  # depth and alpha [H, W]
        W, H = int(cams.width[i]), int(cams.height[i])
        out = render_splats(trainer.state.params, trainer.world_to_cam[i:i + 1], trainer.K[i:i + 1], W, H,
                            trainer.config.step.sh_degree, trainer.background, trainer.config.step.render)
        return out.depth[0, ..., 0].cpu(), out.alpha[0, ..., 0].cpu()

    masks = {}
    with torch.no_grad():
        depths = {j: render(j)[0] for j in trainer.scene.train_ids}
        for i in trainer.scene.test_ids:
            depth, alpha = render(i)
            H, W = depth.shape
            uv = pixel_centers(W, H, dtype=cams.K.dtype).reshape(1, -1, 2)  # [1, HW, 2]
            points = cams[i].unproject(uv, depth.reshape(1, -1))[0]  # [HW, 3] world
            seen = torch.zeros(H * W, dtype=torch.bool)
            for j, other in depths.items():
                pixel, z = (x[0] for x in cams[j].project(points))  # [HW, 2], [HW]
                inside = (z > 0) & (pixel >= 0).all(-1) & (pixel[:, 0] < other.shape[1]) & \
                    (pixel[:, 1] < other.shape[0])
                x = pixel[:, 0].clamp(0, other.shape[1] - 1).long()
                y = pixel[:, 1].clamp(0, other.shape[0] - 1).long()
                seen |= inside & ((other[y, x] - z).abs() < 0.05 * z)
            masks[i] = seen.reshape(H, W) & (alpha > 0.5)
    return masks


def per_view(trainer, masks: dict[int, object]) -> list[dict]:
    """Per held-out view: PSNR over all its pixels, the share some training photo sees (`masks`, from
    `seen_by_training`), and PSNR over those pixels and over the rest; rendered as `evaluate` renders them."""
    import torch

    from spatial.metrics import psnr

    def psnr_over(image, target, mask) -> float | None:  # over the pixels of `mask` [H, W]
        return psnr(image[mask], target[mask]).item() if mask.any() else None

    rows = []
    with torch.no_grad():
        for i in trainer.scene.test_ids:
            rgb = trainer.render_view(i).clamp(0, 1).cpu()
            target = torch.from_numpy(trainer.scene.load_image(i)).to(rgb)
            seen = masks[i]
            rows.append({"view": trainer.scene.image_names[i], "psnr": psnr_over(rgb, target, torch.ones_like(seen)),
                         "seen": float(seen.float().mean()), "psnr_seen": psnr_over(rgb, target, seen),
                         "psnr_unseen": psnr_over(rgb, target, ~seen)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--captures", nargs="+", default=DEFAULT_CAPTURES,
                        help=f"folders of ../shared/data, or {PHONE_VIDEO}: the built-in facade filmed as a phone "
                             "records it (drifting exposure and white balance, blur, rolling shutter, noise)")
    parser.add_argument("--presets", nargs="+", default=["auto", "cpu", "nerf:auto"],
                        help="splat presets to train, or nerf:PRESET, each measured (auto: what `spatial train` "
                             "picks for the capture; cpu is the baseline)")
    parser.add_argument("--downscale", type=int, default=4, help="train at 1/N of the photos' size")
    parser.add_argument("--train-seconds", type=float, default=600.0, help="training-time budget per run")
    parser.add_argument("--steps", type=int, help="train each preset for this many steps (as --step.steps does: "
                        "a GPU preset's schedule run the same way on a CPU, as a stand-in)")
    parser.add_argument("--seeds", type=int, default=2,
                        help="seeds each splat preset is trained from (0, 1, ...), its row their mean: on a capture "
                             "with two held-out photos one run's score moves by more than the presets differ")
    parser.add_argument("--marks", type=float, nargs="+", default=[120.0, 300.0, 600.0],
                        help="training seconds at which the held-out views are evaluated")
    parser.add_argument("--fresh", action="store_true", help="process the captures again, not from the cache")
    parser.add_argument("--opensplat", type=Path, help="OpenSplat's binary (CPU build), trained beside ours")
    parser.add_argument("--opensplat-save-every", type=int, default=100,
                        help="steps between the PLYs OpenSplat saves in its equal-time run (the last one in time "
                             "is scored)")
    parser.add_argument("--record", action="store_true", help="write scripts/results/real_captures[...].{txt,json}, "
                        "the held-out renders beside them")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"the real captures are not at {DATA} (see its README)")
    if args.opensplat is None:
        print(OPENSPLAT_BUILD, flush=True)
    elif not os.access(args.opensplat, os.X_OK):
        raise SystemExit(f"--opensplat {args.opensplat}: not an executable file")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spatial" / "bench_real_captures"
    cache.mkdir(parents=True, exist_ok=True)
    import torch
    from PIL import Image

    cut = f", each preset cut to {args.steps} steps" if args.steps is not None else ""
    lines = [f"real captures: training at 1/{args.downscale} size{cut}, budget {args.train_seconds:g} s of training "
             f"steps, {os.cpu_count()} CPU cores, torch {torch.__version__}; held out: every 8th image, rendered "
             "in the world's own colours (the training photos' mean appearance; 'at nearest photo's appearance': "
             "with that learned for the training photo nearest it, where the preset learns one), at the photo's "
             "EXIF exposure where the preset uses it, the splats with what of their learned appearance follows "
             "exposure ('at mean exposure': at the training photos' mean exposure); "
             "cc: PSNR after each render's "
             "least-squares affine colour map onto its photo (Zip-NeRF's colour-corrected metric)"]
    records = []
    for capture in args.captures:
        scene, seconds, cameras = processed(capture, cache, args.fresh)
        took = f"{seconds:.0f} s" if seconds is not None else "cached (run with --fresh to time it)"
        downscale = max(args.downscale // PHONE_DOWNSCALE, 1) if capture == PHONE_VIDEO else args.downscale
        size = f"; trained at 1/{downscale} of {PHONE_SIZE[0]}x{PHONE_SIZE[1]}" if capture == PHONE_VIDEO else ""
        lines.append(f"{capture}: processing {took}" + (f"; {cameras}" if cameras else "") + size)
        masks = None  # the pixels of each held-out view some training photo sees (the first splat run's)
        runs = {}  # (method, preset auto resolved to) -> the result of that training run
        for preset in args.presets:
            key = resolved(preset, scene)
            same = runs.get(key)
            if same is not None:  # `auto` picked a preset also listed: one training run, two rows
                result = {**same, "preset": f"{preset} (the run above)"}
                image = None
            else:
                seeds = [None] if preset.startswith("nerf:") else range(args.seeds)  # the NeRF: its own seed
                for seed in seeds:
                    run = train(scene, preset, downscale, args.train_seconds, args.marks, cache / f"{capture}-run",
                                args.steps, seed)
                    trainer = run.pop("trainer")
                    if seed in (None, 0):  # the first run's render, curve and per-view scores are shown
                        result, image = run, run.pop("image")
                        if masks is None and not preset.startswith("nerf:"):
                            masks = seen_by_training(trainer)
                        result["per_view"] = per_view(trainer, masks) if masks is not None else []
                        result["runs"] = []
                    result["runs"].append({k: run[k] for k in ("seed", "psnr", "ssim", "cc_psnr", "cc_ssim",
                                                               "steps", "train_seconds", "gaussians")})
                    del trainer
                if len(result["runs"]) > 1:  # the row: the mean over seeds
                    for k in ("psnr", "ssim", "cc_psnr", "cc_ssim", "train_seconds"):
                        result[k] = float(np.mean([r[k] for r in result["runs"]]))
                runs[key] = result
            if args.record and image is not None:
                Image.fromarray(image).save(RESULTS / f"real_{capture}_{preset.replace(':', '_')}.png")
            shown = len(lines)
            marks = "  ".join(f"{c['seconds']:.0f} s: {c['psnr']:.2f} dB (cc {c['cc_psnr']:.2f})"
                              for c in result["curve"])
            lpips = f"{result['lpips']:.3f}" if result["lpips"] is not None else "n/a"
            mean = "".join(f", {what} {result[key]:.2f}" for what, key in (
                ("at mean exposure", "psnr_at_mean_exposure"),
                ("at nearest photo's appearance", "psnr_at_nearest_appearance")) if result[key] is not None)
            mean = f" ({mean[2:]})" if mean else ""
            size = f"{result['gaussians']:,} Gaussians" if result["gaussians"] is not None else "NeRF"
            lines.append(f"  {result['preset']:22s} {result['psnr']:6.2f} dB{mean}  SSIM {result['ssim']:.3f}  "
                         f"cc {result['cc_psnr']:.2f} dB  LPIPS {lpips}  {result['steps']}/{result['of_steps']} "
                         f"steps in {result['train_seconds']:.0f} s, eval {result['eval_seconds']:.0f} s  "
                         f"{size}  {result['test_views']} held-out views   [{marks}]")
            if len(result["runs"]) > 1:
                lines.append(f"           mean of {len(result['runs'])} seeds: " + "  ".join(
                    f"seed {r['seed']} {r['psnr']:.2f} dB (cc {r['cc_psnr']:.2f}, {r['train_seconds']:.0f} s)"
                    for r in result["runs"]) + "; the render, the marks, the per-view and 'at ...' scores are seed 0's")
            if result["per_view"]:
                seen = [v["psnr_seen"] for v in result["per_view"] if v["psnr_seen"] is not None]
                lines.append(f"           over pixels a training photo sees {np.mean(seen):.2f} dB; per view: " +
                             "  ".join(f"{v['view']} {v['psnr']:.2f} dB (seen {100 * v['seen']:.0f}%: "
                                       f"{dB(v['psnr_seen'])}, unseen {dB(v['psnr_unseen'])})"
                                       for v in result["per_view"]))
            records.append({"capture": capture, "entry": preset, "process_seconds": seconds, **result})
            print("\n".join(lines[shown:]), flush=True)
        if args.opensplat is None:
            lines.append(verdict([r for r in records if r["capture"] == capture]))
            print(lines[-1], flush=True)
            continue
        peer_scene = without_held_out(scene, cache / f"{capture}-opensplat-scene")
        mine = [r for r in records if r["capture"] == capture]
        mine = [r for r in mine if r["gaussians"] is not None] or mine  # splat runs
        ours = next((r for r in mine if r["preset"].startswith("auto")), mine[0])  # what a user gets by default
        for label, steps, budget in (("opensplat, equal time", 30000, args.train_seconds),
                                     ("opensplat, equal steps", ours["steps"], None)):
            run = run_opensplat(args.opensplat, peer_scene, cache / f"{capture}-opensplat", downscale, steps,
                                budget, args.opensplat_save_every)
            result, trainer = score_peer(scene, run["ply"], downscale, cache / f"{capture}-opensplat-eval",
                                         masks)
            train_view = trainer.evaluate(ids=trainer.scene.train_ids[:4])  # a set-up error shows here first
            if args.record:
                with __import__("torch").no_grad():
                    for name, i in (("held_out", trainer.scene.test_ids[0]), ("train", trainer.scene.train_ids[0])):
                        image = trainer.render_view(i).clamp(0, 1).cpu().numpy()
                        suffix = "" if name == "held_out" else "_train"
                        Image.fromarray((image * 255).round().astype(np.uint8)).save(
                            RESULTS / f"real_{capture}_opensplat{'_time' if budget else '_steps'}{suffix}.png")
            lpips = f"{result['lpips']:.3f}" if result["lpips"] is not None else "n/a"
            seen = [v["psnr_seen"] for v in result["per_view"] if v["psnr_seen"] is not None]
            lines.append(f"  {label:22s} {result['psnr']:6.2f} dB  SSIM {result['ssim']:.3f}  cc "
                         f"{result['cc_psnr']:.2f} dB  LPIPS {lpips}  {run['steps']} steps in {run['seconds']:.0f} s "
                         f"(wall, loading included)  {result['gaussians']:,} Gaussians; at 4 training views "
                         f"{train_view['psnr']:.2f} dB; over pixels a training photo sees {np.mean(seen):.2f} dB")
            records.append({"capture": capture, "entry": label, "preset": label, "steps": run["steps"],
                            "train_seconds": run["seconds"], "train_view_psnr": train_view["psnr"],
                            **{k: result[k] for k in ("psnr", "ssim", "cc_psnr", "cc_ssim", "lpips", "per_view",
                                                      "gaussians")}})
            print(lines[-1], flush=True)
        lines.append(verdict([r for r in records if r["capture"] == capture]))
        print(lines[-1], flush=True)
    print("\n".join(lines))
    if args.record:
        name = "real_captures" + ("" if args.steps is None else f"_{args.steps}_steps") + \
            ("" if args.captures == DEFAULT_CAPTURES else "_" + "_".join(args.captures))
        (RESULTS / f"{name}.txt").write_text("\n".join(lines) + "\n")
        (RESULTS / f"{name}.json").write_text(json.dumps(records, indent=2) + "\n")


def resolved(entry: str, scene: Path) -> tuple[str, str]:
    """(method, preset) that `entry` (a splat preset or `nerf:PRESET`, maybe `auto`) trains on `scene`."""
    from spatial.training.methods import get_method

    name, preset = entry.split(":", 1) if entry.startswith("nerf:") else ("splat", entry)
    return name, get_method(name).preset_name(preset, scene)


def verdict(rows: list[dict]) -> str:
    """One capture's rows set against the issue's targets: `auto` against `cpu` (no lower), against OpenSplat at
    equal time (>= 1 dB higher) and equal steps (no lower), and the NeRF's `auto` against the splats' (within 2 dB)."""
    row = {r["entry"]: r for r in rows}
    if "auto" not in row:
        return "  targets: no auto row"
    checks = []
    for entry, label, least in (("cpu", "cpu", 0.0), ("opensplat, equal time", "OpenSplat at equal time", 1.0),
                                ("opensplat, equal steps", "OpenSplat at equal steps", 0.0),
                                ("nerf:auto", "the NeRF's auto", -2.0)):
        if entry in row:
            ahead = row["auto"]["psnr"] - row[entry]["psnr"]
            if entry == "nerf:auto":  # the NeRF may trail the splats by up to 2 dB
                ahead = -ahead
            checks.append(f"auto {row['auto']['psnr'] - row[entry]['psnr']:+.2f} dB against {label} "
                          f"({'NeRF within 2 dB' if entry == 'nerf:auto' else f'target {least:+g}'}: "
                          f"{'met' if ahead >= least else 'NOT met'})")
    return "  targets: " + "; ".join(checks)


def dB(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
