"""Checkpoint files: written atomically, read without running anything they carry.

A checkpoint holds only tensors, numbers, strings, lists and dicts (configs as `dataclasses.asdict`,
random states as tensors), so it is read with `torch.load(weights_only=True)`: a `.pt` from a stranger
that pickles code (`__reduce__` calling anything at all) is refused before any of it runs.
"""

from __future__ import annotations

import math
import pickle
import warnings
from pathlib import Path

import torch

from spatial.errors import file_error
from spatial.files import atomic_path


def write_checkpoint(payload: dict, path: Path) -> None:
    """Save `payload` to `path` atomically (spatial.files.atomic_path): a crash or Ctrl-C mid-write never
    leaves a truncated checkpoint, and an unwritable disk is a one-line error."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: Path) -> dict:
    """The payload of a checkpoint file, on the CPU; a one-line `SpatialError` naming the file otherwise."""
    try:
        with warnings.catch_warnings():  # a damaged file's oddities (its pickle protocol) are refused, not warned of
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a truncated or foreign file
        if isinstance(e, pickle.UnpicklingError) and "Weights only load failed" in str(e):
            raise file_error(path, "not a checkpoint written by `spatial train`: it holds Python objects other "
                                   "than tensors and plain data, which are never loaded (they could run code)"
                             ) from None
        detail = (str(e).splitlines() or [""])[0][:200]
        raise file_error(path, f"not a readable checkpoint (not a PyTorch file, or a damaged one: "
                               f"{type(e).__name__}: {detail})") from None
    if not isinstance(payload, dict):
        raise file_error(path, "not a checkpoint written by `spatial train` (no model inside)")
    check_tensors(path, payload)
    return payload


MAX_DEPTH = 16  # a checkpoint nests 5 levels (optimizer state: dict, "state", index, name, tensor)


def check_tensors(path: Path, payload: dict) -> None:
    """Every tensor in `payload` is a plain one that owns its elements: an expanded view (stride 0) of a few stored
    bytes can claim billions of elements, which the first copy of it would allocate. Checked before any is used."""
    stack = [(payload, "", 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise file_error(path, f"{where}: nested more than {MAX_DEPTH} levels deep, which no checkpoint is")
        if isinstance(node, torch.Tensor):
            if node.layout != torch.strided:
                raise file_error(path, f"{where}: a {node.layout} tensor; checkpoints hold plain (dense) tensors")
            stored = node.untyped_storage().nbytes()
            if node.numel() * node.element_size() > stored:
                raise file_error(path, f"{where}: a tensor of shape {tuple(node.shape)} made from {stored:,} stored "
                                       "bytes (an expanded view); checkpoints hold plain tensors")
        elif isinstance(node, dict):
            stack += [(v, f"{where}.{k}" if where else str(k), depth + 1) for k, v in node.items()]
        elif isinstance(node, (list, tuple)):
            stack += [(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(node)]



# ---- resuming: a checkpoint's structure against the run's own, before anything is restored -----------------
def check_like(path: Path, saved, own, where: str = "checkpoint", rows: tuple[int, int] | None = None) -> None:
    """Refuse `saved` (from a checkpoint) unless it has the structure of `own` (the same thing from the run about to
    resume it): the same kinds of values, every key `own` has, tensors of its dtype and shape. With `rows` =
    (the run's count, the checkpoint's count), a tensor whose first dimension is the run's count (one row per
    Gaussian) may have the checkpoint's count of rows instead."""
    def refuse(expected: str):
        got = f"a tensor of shape {tuple(saved.shape)}" if isinstance(saved, torch.Tensor) else f"{saved!r:.40}"
        raise file_error(path, f"cannot resume from it: {where} is {got} where this run has {expected}; was it "
                               "edited, or written by another run?")

    if isinstance(own, torch.Tensor):
        shape = tuple(own.shape)
        if rows is not None and shape and shape[0] == rows[0]:
            shape = (rows[1], *shape[1:])
        if not isinstance(saved, torch.Tensor) or saved.dtype != own.dtype or tuple(saved.shape) != shape:
            refuse(f"a {own.dtype} tensor of shape {shape}")
    elif isinstance(own, dict):
        if not isinstance(saved, dict):
            refuse("an object")
        for key, value in own.items():
            if key not in saved:
                raise file_error(path, f"cannot resume from it: {where} has no {key!r}")
            check_like(path, saved[key], value, f"{where}.{key}", rows)
    elif isinstance(own, (list, tuple)):
        if not isinstance(saved, (list, tuple)):
            refuse("a list")
        if isinstance(own, tuple) or any(isinstance(v, (dict, list, tuple, torch.Tensor)) for v in own):  # item by item
            if len(saved) != len(own):
                refuse(f"a list of {len(own)}")
            for i, (s, o) in enumerate(zip(saved, own)):
                check_like(path, s, o, f"{where}[{i}]", rows)
        else:  # numbers or names, as many as there are
            kinds = {type(v) for v in own} or {int}
            for i, value in enumerate(saved):
                check_like(path, value, next(v for v in own if type(v) in kinds) if own else 0, f"{where}[{i}]", rows)
    elif isinstance(own, bool):
        if not isinstance(saved, bool):
            refuse("true or false")
    elif isinstance(own, int):
        if not isinstance(saved, int) or isinstance(saved, bool):
            refuse("a whole number")
    elif isinstance(own, float):
        if not isinstance(saved, (int, float)) or isinstance(saved, bool) or not math.isfinite(saved):
            refuse("a finite number")
    elif isinstance(own, str) and not isinstance(saved, str):
        refuse("a name")


def check_optimizer_state(path: Path, saved, optimizer: torch.optim.Optimizer, where: str) -> None:
    """An optimizer's saved state fits `optimizer` (made for the parameters being restored): its groups, and per
    parameter, moments of that parameter's shape. Torch's load_state_dict checks neither; a mismatch would fail at
    the first step instead."""
    own = optimizer.state_dict()
    check_like(path, saved, {k: v for k, v in own.items() if k != "state"}, where)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    sizes = [len(group["params"]) for group in optimizer.param_groups]
    if [len(g.get("params", ())) if isinstance(g, dict) else -1 for g in saved["param_groups"]] != sizes:
        raise file_error(path, f"cannot resume from it: {where} optimises other parameters than this run's")
    for i, (group, mine) in enumerate(zip(saved["param_groups"], own["param_groups"])):
        lr = group.get("lr")
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not 0 <= lr < 1e3:
            raise file_error(path, f"cannot resume from it: {where}.param_groups[{i}].lr is {lr!r:.40}")
        # the run's own settings (betas, eps, fused, capturable, ...) win over the file's; only the learning rate
        # (where a schedule has taken it) comes from the checkpoint
        group.update({k: v for k, v in mine.items() if k not in ("params", "lr", "initial_lr")})
    state = saved.get("state")
    if not isinstance(state, dict):
        raise file_error(path, f"cannot resume from it: {where}.state is not an object")
    keys = {"step", "exp_avg", "exp_avg_sq"} if isinstance(optimizer, torch.optim.Adam) else None
    if keys is not None and optimizer.defaults.get("amsgrad"):
        keys.add("max_exp_avg_sq")
    for index, entry in state.items():
        if not isinstance(index, int) or not 0 <= index < len(params) or not isinstance(entry, dict):
            raise file_error(path, f"cannot resume from it: {where}.state has an entry {index!r:.20} for no parameter")
        if keys is not None and set(entry) != keys:
            raise file_error(path, f"cannot resume from it: {where}.state[{index}] holds {', '.join(sorted(entry))}; "
                                   f"Adam keeps {', '.join(sorted(keys))}")
        for name, value in entry.items():
            if not isinstance(value, torch.Tensor) or \
                    value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise file_error(path, f"cannot resume from it: {where}.state[{index}].{name} is not a finite tensor")
            if name == "step":
                if value.dim() or not value.is_floating_point() or float(value) < 0:
                    raise file_error(path, f"cannot resume from it: {where}.state[{index}].step is {value!r:.40}")
            elif tuple(value.shape) != tuple(params[index].shape) or value.dtype != params[index].dtype:
                raise file_error(path, f"cannot resume from it: {where}.state[{index}].{name} is a {value.dtype} "
                                       f"tensor of shape {tuple(value.shape)}, its parameter a {params[index].dtype} "
                                       f"one of {tuple(params[index].shape)}")


def check_step(path: Path, payload: dict) -> int:
    step, elapsed = payload.get("step"), payload.get("elapsed", 0.0)
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise file_error(path, f"cannot resume from it: its step is {step!r:.40}, not a whole number of at least 0")
    if not isinstance(elapsed, (int, float)) or isinstance(elapsed, bool) or not 0 <= elapsed < 1e9:
        raise file_error(path, f"cannot resume from it: its elapsed time is {elapsed!r:.40}")
    return step


def check_generator(path: Path, saved, own: dict, where: str) -> None:
    """A saved random stream: its state is checked when it is of this run's device type (else it is reseeded)."""
    if not isinstance(saved, dict) or not isinstance(saved.get("device"), str):
        if isinstance(saved, torch.Tensor):  # a bare CPU state, as older checkpoints hold
            saved = {"device": "cpu", "state": saved}
        else:
            raise file_error(path, f"cannot resume from it: {where} is not a random stream's state")
    if saved["device"] == own["device"]:
        check_like(path, saved, own, where)
        try:  # the bytes of a Mersenne Twister's state have their own rules: a scratch stream tries them
            torch.Generator(device=own["device"]).set_state(saved["state"])
        except RuntimeError as e:
            raise file_error(path, f"cannot resume from it: {where} is not a valid random state ({e})") from None
