"""The training run folder, in one place: what `spatial train` writes and everything else reads.

    outputs/NAME/METHOD/
      config.json          {"method", "preset", "scene", "background", "config"}: how to rebuild the model
      checkpoints/         step-NNNNNN.pt, the newest two (spatial.training.checkpoint reads and writes them)
      eval.json            scores on the held-out views
      splats.ply, exports/ what the method and `spatial export` write

Configs are saved as `dataclasses.asdict` output and rebuilt with `config_from_dict`.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path

from spatial.errors import SpatialError, file_error

KEEP_CHECKPOINTS = 2  # the newest and the one before it, so a damaged newest one is not the end


@dataclass
class RunInfo:
    """What a run's config.json says."""

    method: str  # a name in spatial.training.methods.METHODS
    scene: Path | None  # the scene folder it trains on
    preset: str = ""
    background: tuple[float, float, float] | None = None  # None in runs from before it was recorded
    config: dict | None = None  # the method's config, as asdict gives it

    @property
    def downscale(self) -> int:
        return int((self.config or {}).get("downscale") or 1)


def config_path(run: Path) -> Path:
    return Path(run) / "config.json"


def eval_path(run: Path) -> Path:
    return Path(run) / "eval.json"


def checkpoints(run: Path) -> list[Path]:
    """A run folder's checkpoints (`checkpoints/step-*.pt`), oldest first."""
    return sorted((Path(run) / "checkpoints").glob("step-*.pt"))


def latest_checkpoint(run: Path) -> Path | None:
    found = checkpoints(run)
    return found[-1] if found else None


def checkpoint_path(run: Path, step: int) -> Path:
    return Path(run) / "checkpoints" / f"step-{step:06d}.pt"


def run_of(checkpoint: Path) -> Path:
    """The run folder a checkpoint belongs to."""
    return Path(checkpoint).parent.parent


def prune_checkpoints(run: Path) -> None:
    for old in checkpoints(run)[:-KEEP_CHECKPOINTS]:
        old.unlink()


def write_run_info(run: Path, info: RunInfo) -> None:
    from spatial.files import write_json_atomic

    write_json_atomic(config_path(run), {"scene": str(info.scene) if info.scene else None, "method": info.method,
                                         "preset": info.preset, "background": list(info.background or ()) or None,
                                         "config": info.config})


def read_run_info(run: Path) -> RunInfo | None:
    """The run's config.json, checked; None when there is none (a bare checkpoint copied elsewhere)."""
    path = config_path(run)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise file_error(path, f"not a readable run config ({e}); was it edited by hand?") from None
    if not isinstance(data, dict):
        raise file_error(path, "not a run config written by `spatial train` (not a JSON object)")
    scene, background, config = data.get("scene"), data.get("background"), data.get("config")
    method = data.get("method", "splat")
    if not isinstance(method, str) or (scene is not None and not isinstance(scene, str)) \
            or (config is not None and not isinstance(config, dict)):
        raise file_error(path, "not a run config written by `spatial train` (method, scene or config of the "
                               "wrong type)")
    if background is not None and not (isinstance(background, list) and len(background) == 3
                                       and all(isinstance(c, (int, float)) and 0 <= c <= 1 for c in background)):
        raise file_error(path, f"background must be three numbers in 0-1, not {background!r}")
    return RunInfo(method, Path(scene) if scene else None, str(data.get("preset", "")),
                   tuple(float(c) for c in background) if background is not None else None, config)


def check_run_folder(out: Path, resume: bool) -> Path | None:
    """Before training into `out`: refuse to overwrite a run or resume nothing; the checkpoint to resume."""
    if out.exists() and not out.is_dir():
        raise SpatialError(f"{out}: is a file, not a folder; choose another --out for the training run")
    checkpoint = latest_checkpoint(out)
    if checkpoint is not None and not resume:
        raise SpatialError(f"{out}: already holds a training run; pass --resume to continue it, "
                           "or choose another --out")
    if resume and checkpoint is None:
        raise SpatialError(f"{out}: no checkpoint to resume from (expected {out}/checkpoints/step-*.pt)")
    return checkpoint


def jsonable(obj):
    """A config dataclass (or anything json can hold) as plain JSON data."""
    return json.loads(json.dumps(asdict(obj) if is_dataclass(obj) else obj, default=str))


class ConfigMismatch(ValueError):
    """A saved config that does not fit its dataclass (a field of the wrong type); the message names the field."""


def config_from_dict(cls, data: dict, where: str = "config"):
    """Rebuild a (nested) config dataclass from `dataclasses.asdict` output, e.g. out of a checkpoint, every field
    checked against its declared type (`ConfigMismatch` names the first that is not)."""
    if not isinstance(data, dict):
        raise ConfigMismatch(f"{where} must be an object of settings, not {type(data).__name__}")
    hints = typing.get_type_hints(cls)

    def wrong(name: str, tp, v):
        return ConfigMismatch(f"{name} must be {getattr(tp, '__name__', tp)}, not {v!r:.40}")

    def value(tp, v, name: str):
        if is_dataclass(tp):
            return config_from_dict(tp, v, name)
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is typing.Annotated:
            return value(args[0], v, name)
        if origin in (typing.Union, types.UnionType):
            if v is None and type(None) in args:
                return None
            for option in (a for a in args if a is not type(None)):
                try:
                    return value(option, v, name)
                except ConfigMismatch:
                    continue
            raise wrong(name, tp, v)
        if origin is typing.Literal:
            if not any(v == a and type(v) is type(a) for a in args):
                raise ConfigMismatch(f"{name} must be one of {', '.join(map(repr, args))}, not {v!r:.40}")
            return v
        if origin is tuple:
            repeated = len(args) == 2 and args[1] is Ellipsis
            if not isinstance(v, (list, tuple)) or (not repeated and len(v) != len(args)):
                raise wrong(name, tp, v)
            kinds = [args[0]] * len(v) if repeated else args
            return tuple(value(a, x, f"{name}[{i}]") for i, (a, x) in enumerate(zip(kinds, v)))
        if tp is bool and not isinstance(v, bool) or tp is int and (not isinstance(v, int) or isinstance(v, bool)
                                                                     or abs(v) >= 2**31) \
                or tp is float and (not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v)) \
                or tp is str and not isinstance(v, str):
            raise wrong(name, tp, v)
        return float(v) if tp is float else v

    return cls(**{f.name: value(hints[f.name], data[f.name], f"{where}.{f.name}")
                  for f in fields(cls) if f.name in data})
