"""Running a training from start to finish: the run folder, a progress bar, Ctrl-C, evaluation, the
final export and the live viewer. `spatial train METHOD` (and the demo, the benchmarks, the tests) call
`run_training` with a method from spatial.training.methods:

    result = run_training("splat", scene_path, out, config, resume=False)

What a method's trainer supplies is in spatial/training/trainer.py; the run folder's layout in
spatial/training/run_folder.py.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from spatial.errors import SpatialError
from spatial.files import write_json_atomic
from spatial.progress import progress_bar
from spatial.training.distributed import Processes, processes_from_environment
from spatial.training.methods import Method, get_method
from spatial.training.run_folder import (
    RunInfo,
    check_run_folder,
    checkpoints,
    eval_path,
    jsonable,
    read_run_info,
    write_run_info,
)

if TYPE_CHECKING:
    from spatial.training.trainer import TrainerBase


@dataclass
class LiveViewerOptions:
    host: str = "127.0.0.1"
    port: int = 7007
    refresh_seconds: float = 5.0
    keep_open: bool = True  # after training, serve until Ctrl-C


def make_trainer(method: Method, scene_path: Path, config, out: Path) -> TrainerBase:
    """Load the scene and build the method's trainer, seeded by the config."""
    import torch

    from spatial.io import load_scene

    scene = load_scene(scene_path)
    torch.manual_seed(config.seed)
    return method.trainer(scene, config, out)


def run_training(method: str | Method, scene_path: Path, out: Path, config, resume: bool, preset: str = "",
                 viewer: LiveViewerOptions | None = None) -> dict:
    """Load, train (with a progress bar), evaluate and export; returns the evaluation.

    `config`: the method's config dataclass, saved in config.json with the method, preset and scene.
    """
    method = get_method(method) if isinstance(method, str) else method
    # under torchrun, every process trains; process 0 alone speaks, writes the run folder and serves the viewer
    processes = processes_from_environment(str(config.device))
    try:
        return _run(method, scene_path, out, config, resume, preset, viewer, processes)
    finally:
        processes.close(wait=False)  # after an error; a run that trained to the end has closed already


def _run(method: Method, scene_path: Path, out: Path, config, resume: bool, preset: str,
         viewer: LiveViewerOptions | None, processes: Processes) -> dict:
    command = f"spatial train {method.name}"  # how the user reruns it, for the resume hint
    steps = method.steps(config)
    console = Console(quiet=not processes.main)
    checkpoint = check_run_folder(out, resume)
    processes.barrier()  # every process has looked at the run folder before process 0 writes to it
    if not processes.main:
        viewer = None
    live = _live_viewer(viewer) if viewer is not None else None  # fail before loading anything
    if processes.main:
        _make_run_folder(out)
    trainer = make_trainer(method, scene_path, config, out)
    for warning in trainer.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    for note in trainer.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if checkpoint is not None and processes.main:
        _warn_changed_settings(console, out, jsonable(config))
    if processes.main:
        write_run_info(out, RunInfo(method.name, Path(scene_path).resolve(), preset,
                                    tuple(trainer.background.tolist()), jsonable(config)))
    if checkpoint is not None:
        checkpoint = _load_newest_readable(trainer, out, console)
        console.print(f"resuming from {checkpoint} (step {trainer.step_count})")
    console.print(f"{trainer.describe()}, {steps} steps -> {out}"
                  + (f" ({processes.world_size} processes)" if processes.world_size > 1 else ""))
    session = live(trainer, viewer) if live is not None else None
    if session is not None:
        console.print(f"live viewer at [bold]{session.url}[/] (refreshes every {viewer.refresh_seconds:g} s; "
                      "Pause/Resume in its panel)")
    start = time.time()
    try:
        try:
            with progress_bar("train", steps, console) as advance:
                advance(trainer.step_count, steps)

                def on_step(stats: dict) -> None:
                    if session is not None:
                        session.on_step(stats)
                    if trainer.step_count % 10 == 0 or trainer.step_count == steps:  # reading stats waits for a GPU
                        advance(trainer.step_count, steps, trainer.progress_text(stats))

                trainer.train(steps, on_step)
            train_seconds = time.time() - start
            processes.close()  # the last collective: evaluation and export are process 0's alone
        except KeyboardInterrupt:
            console.print(f"\ninterrupted at step {trainer.step_count}; checkpoint saved in {out}/checkpoints. "
                          f"Continue with the same options and --resume: {command} {scene_path} --out {out} "
                          "--resume ...")
            raise
        if not processes.main:  # process 0 evaluates and exports
            return {}
        result = trainer.evaluate()
        result["train_seconds_this_session"] = round(train_seconds, 1)
        write_json_atomic(eval_path(out), result)
        files = export_run(trainer, out)
        table = Table(title="evaluation", show_header=False)
        for key in ("views", "psnr", "ssim", "gaussians", "train_seconds", "eval_seconds", "peak_memory_mb"):
            if key in result:
                value = result[key]
                table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
        console.print(table)
        for what, path in files:
            console.print(f"{what}: [bold]{path}[/]")
        if session is not None:
            session.finished(result)
            if viewer.keep_open:
                console.print(f"training done; the viewer stays at {session.url} (Ctrl-C to close it)")
                _wait_for_ctrl_c()
        return result
    finally:
        if session is not None:
            session.stop()


def export_run(trainer: TrainerBase, out: Path) -> list[tuple[str, Path]]:
    """The files a finished run leaves, as (what, file): a splat model's splats as `out/splats.ply` (the INRIA
    layout every 3DGS viewer opens), then what the method names itself (a NeRF: its checkpoint)."""
    from spatial.formats import save_splats

    files = []
    params = trainer.snapshot().splat_params()
    if params is not None:
        save_splats(params, out / "splats.ply")
        files.append(("splats (INRIA 3DGS layout: open it in SuperSplat or any 3DGS viewer)", out / "splats.ply"))
    return files + trainer.export()


def _make_run_folder(out: Path) -> None:
    """Create the run folder up front, so a bad --out fails before anything is loaded or trained."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise SpatialError(f"{out}: cannot write the training run there ({e.strerror or e}); choose another --out") \
            from None


def _load_newest_readable(trainer: TrainerBase, out: Path, console: Console) -> Path:
    """Load the newest checkpoint that reads; a damaged newer one is named and passed over (two are kept)."""
    found = checkpoints(out)[::-1]
    for i, path in enumerate(found):
        try:
            trainer.load_checkpoint(path)
            return path
        except SpatialError as e:
            if i + 1 == len(found):
                raise
            console.print(f"[yellow]warning:[/] {e}; resuming from the checkpoint before it", highlight=False)
    raise AssertionError("unreachable: run_training calls this only when a checkpoint exists")


def _warn_changed_settings(console: Console, run: Path, config: dict) -> None:
    """On --resume, name every setting that differs from the run's own (e.g. a preset's steps left out)."""
    try:
        info = read_run_info(run)
    except SpatialError:  # a damaged config.json is rewritten below; there is nothing to compare with
        return
    before = info.config if info is not None else None
    if before is None:
        return

    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    old, new = flat(before), flat(config)
    changed = [f"{k} {new.get(k)!r} (the run had {old.get(k)!r})" for k in sorted(set(old) | set(new))
               if old.get(k) != new.get(k)]
    if changed:
        console.print(f"[yellow]warning:[/] resuming with settings that differ from the run's: {'; '.join(changed[:6])}"
                      + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
                      + ". Pass the run's options again to continue it unchanged.", highlight=False)


def _wait_for_ctrl_c() -> None:
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass


def _live_viewer(options: LiveViewerOptions):
    """The live-viewer class installed under the `spatial.live_viewers` entry point (the browser viewer
    registers one); `spatial` itself never imports a viewer by name."""
    from importlib.metadata import entry_points

    from spatial.ports import check_port

    found = list(entry_points(group="spatial.live_viewers"))
    if not found:
        raise SpatialError("--viewer needs the browser viewer, which is not installed here "
                           "(install spatial with its viewer: pip install -e .)")
    check_port(options.host, options.port, "--viewer.port")
    return found[0].load()
