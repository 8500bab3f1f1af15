"""Running a trainer from the command line: checkpoint checks, a progress bar, Ctrl-C, evaluation,
the final export, and the live viewer. Every method (splats, NeRF) goes through `run_training`.

A trainer is a `spatial.trainer_base.TrainerBase`; `SplatTrainer` and `NerfTrainer` are the two.

    trainer = make_trainer()                  # loads the scene, builds the model
    trainer.train(steps, on_step)             # checkpoints periodically and on Ctrl-C
    result = trainer.evaluate()               # PSNR/SSIM on the test views, also written to eval.json
    files = trainer.export()                  # the run's final files: splats.ply, ...
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from spatial.checkpoint import run_checkpoints
from spatial.errors import SpatialError
from spatial.files import write_json_atomic
from spatial.progress import progress_bar

if TYPE_CHECKING:
    from spatial.trainer_base import TrainerBase


@dataclass
class LiveViewerOptions:
    host: str = "127.0.0.1"
    port: int = 7007
    refresh_seconds: float = 5.0
    keep_open: bool = True  # after training, serve until Ctrl-C


def latest_checkpoint(run: Path) -> Path | None:
    found = run_checkpoints(run)
    return found[-1] if found else None


def run_training(make_trainer: Callable[[], TrainerBase], command: str, scene_path: Path, out: Path, config,
                 steps: int, resume: bool, preset: str = "", viewer: LiveViewerOptions | None = None) -> dict:
    """Load, train (with a progress bar), evaluate and export; returns the evaluation.

    `command` is how the user reruns it (for the resume hint), `config` the dataclass saved as config.json.
    """
    console = Console()
    if out.exists() and not out.is_dir():
        raise SpatialError(f"{out}: is a file, not a folder; choose another --out for the training run")
    checkpoint = latest_checkpoint(out)
    if checkpoint is not None and not resume:
        raise SpatialError(f"{out}: already holds a training run; pass --resume to continue it, "
                           "or choose another --out")
    if resume and checkpoint is None:
        raise SpatialError(f"{out}: no checkpoint to resume from (expected {out}/checkpoints/step-*.pt)")
    live = _live_viewer(viewer) if viewer is not None else None  # fail before loading anything
    _make_run_folder(out)
    trainer = make_trainer()
    for warning in trainer.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if checkpoint is not None:
        _warn_changed_settings(console, out / "config.json", jsonable(config))
    write_json_atomic(out / "config.json", {"scene": str(Path(scene_path).resolve()), "method": command.split()[2],
                                            "preset": preset, "config": jsonable(config)})
    if checkpoint is not None:
        checkpoint = _load_newest_readable(trainer, out, console)
        console.print(f"resuming from {checkpoint} (step {trainer.step_count})")
    console.print(f"{trainer.describe()}, {steps} steps -> {out}")
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
        except KeyboardInterrupt:
            console.print(f"\ninterrupted at step {trainer.step_count}; checkpoint saved in {out}/checkpoints. "
                          f"Continue with the same options and --resume: {command} {scene_path} --out {out} "
                          "--resume ...")
            raise
        train_seconds = time.time() - start
        result = trainer.evaluate()
        result["train_seconds_this_session"] = round(train_seconds, 1)
        write_json_atomic(out / "eval.json", result)
        files = trainer.export()
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
    found = run_checkpoints(out)[::-1]
    for i, path in enumerate(found):
        try:
            trainer.load_checkpoint(path)
            return path
        except SpatialError as e:
            if i + 1 == len(found):
                raise
            console.print(f"[yellow]warning:[/] {e}; resuming from the checkpoint before it", highlight=False)
    raise AssertionError("unreachable: run_training calls this only when a checkpoint exists")


def _warn_changed_settings(console: Console, saved: Path, config: dict) -> None:
    """On --resume, name every setting that differs from the run's own (e.g. a preset's steps left out)."""
    try:
        before = json.loads(saved.read_text())["config"]
    except (OSError, ValueError, KeyError):
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

    from spatial.cli.ports import check_port

    found = list(entry_points(group="spatial.live_viewers"))
    if not found:
        raise SpatialError("--viewer needs the browser viewer, which is not installed here "
                           "(install spatial with its viewer: pip install -e .)")
    check_port(options.host, options.port, "--viewer.port")
    return found[0].load()


def jsonable(obj):
    return json.loads(json.dumps(asdict(obj) if is_dataclass(obj) else obj, default=str))


def config_from_dict(cls, data: dict):
    """Rebuild a (nested) config dataclass from `dataclasses.asdict` output, e.g. out of a checkpoint."""
    import types
    import typing

    hints = typing.get_type_hints(cls)

    def value(tp, v):
        if is_dataclass(tp) and isinstance(v, dict):
            return config_from_dict(tp, v)
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            if v is None:
                return None
            return value(next(a for a in args if a is not type(None)), v)
        if origin is tuple and isinstance(v, (list, tuple)):
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(value(args[0], x) for x in v)
            return tuple(value(a, x) for a, x in zip(args, v))
        return v

    return cls(**{f.name: value(hints[f.name], data[f.name]) for f in fields(cls) if f.name in data})
