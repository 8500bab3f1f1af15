"""Count, on any device, the operations that make the host wait for a GPU.

A CUDA kernel launch returns at once and the GPU works through its queue while Python goes on; an operation whose
result the host needs now (a number, a shape, a copy) waits for the queue to drain first. Each such wait leaves the
GPU idle while the host prepares the next kernels, so a training step should have as few as its algorithm needs.

torch's own sync debug mode (`torch.cuda.set_sync_debug_mode`) sees them only on a GPU. `HostSyncs` sees them on a
CPU too, by what the operations are rather than by what the device did:

- scalar reads: `.item()`, `bool(t)`, `int(t)`, `float(t)`, `f"{t:.2f}"`, `torch.equal` (`_local_scalar_dense`);
- shapes that depend on the data: `nonzero`, `torch.where(mask)`, boolean indexing (`x[mask]`, `x[mask] = v`),
  `masked_select`, `unique`, `bincount`, `repeat_interleave` without `output_size`;
- host data to the device: a tensor made from Python numbers or lists (`torch.tensor`, `new_tensor`, indexing with
  a list), which on a GPU is a blocking copy;
- device data to the host: `.tolist()`, `.numpy()`, `.cpu()` and `.to("cpu")`.

On a CPU it cannot tell a host tensor from a device one, so code whose tensors are the host's own by design (an
optimizer's step counts, a permutation drawn from a CPU generator) says so with `host_only()`, and everything else
counts. `scripts/gpu_check.py` measures the real count on a GPU, which is what these declarations answer to.

    with HostSyncs() as syncs:
        trainer.step()
    syncs.total, syncs.where  # the count, and each one's kind and the line of spatial that caused it
"""

from __future__ import annotations

import contextlib
import traceback
from collections import Counter
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

_SCALAR_READS = {aten._local_scalar_dense.default, aten.equal.default, aten.is_nonzero.default}
_DATA_SHAPES = {
    aten.nonzero.default, aten.argwhere.default, aten.masked_select.default, aten.bincount.default,
    aten._unique.default, aten._unique2.default, aten.unique_dim.default, aten.unique_consecutive.default,
}
_FROM_HOST = {aten.lift_fresh.default}
_INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}
_REPEAT = {aten.repeat_interleave.Tensor, aten.repeat_interleave.self_Tensor}
_TO_HOST = {"tolist", "numpy", "cpu", "__array__"}

_PACKAGE = str(Path(__file__).parent)
_TORCH = str(Path(torch.__file__).parent)


def _caller() -> str:
    """The innermost line of this package (outside this file) on the stack, else the innermost line at all."""
    frames = [f for f in traceback.extract_stack() if not f.filename.startswith(_TORCH) and f.filename != __file__]
    ours = [f for f in frames if f.filename.startswith(_PACKAGE)]
    frame = (ours or frames or [None])[-1]
    if frame is None:
        return "?"
    name = frame.filename[len(_PACKAGE) - len("spatial"):] if frame.filename.startswith(_PACKAGE) else frame.filename
    return f"{name}:{frame.lineno}"


def _kind(func, args, kwargs) -> str | None:
    """Why the aten operation `func` makes a GPU's host wait, or None when it does not."""
    if func in _SCALAR_READS:
        return "scalar read"
    if func in _DATA_SHAPES:
        return f"data-dependent shape ({func.__name__.split('.')[0]})"
    if func in _FROM_HOST:
        return "tensor from host data"  # (a number assigned into a tensor is not: see _Functions)
    if func in _INDEXING:
        indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
        if any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices or ()):
            return "data-dependent shape (boolean index)"
    if func in _REPEAT and kwargs.get("output_size") is None:
        return "data-dependent shape (repeat_interleave without output_size)"
    if func is aten._to_copy.default and "device" in kwargs and args and kwargs["device"] != args[0].device:
        return "copy between devices"
    return None


class _Dispatch(TorchDispatchMode):
    def __init__(self, owner: HostSyncs):
        super().__init__()
        self.owner = owner

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        kind = _kind(func, args, kwargs)
        owner = self.owner
        if kind is not None and not owner._reading_to_host and not (func in _FROM_HOST and owner._assigning_number):
            owner._record(kind)
        return func(*args, **kwargs)


class _Functions(TorchFunctionMode):
    """Device-to-host reads, which a CPU tensor serves without any dispatched operation (on a GPU the copy they make
    is dispatched too, and not counted again); and `x[i] = number`, which on a CPU lifts the number into a tensor (a
    copy from the host, to the dispatcher) but on a GPU fills in place."""

    def __init__(self, owner: HostSyncs):
        super().__init__()
        self.owner = owner

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        to_host = name in _TO_HOST or (name == "to" and _names_host(args[1:], kwargs))
        if to_host and args and isinstance(args[0], torch.Tensor):
            self.owner._record(f"device to host ({name})")
            flag = "_reading_to_host"
        elif name == "__setitem__" and len(args) == 3 and isinstance(args[2], (bool, int, float)):
            flag = "_assigning_number"
        else:
            return func(*args, **kwargs)
        setattr(self.owner, flag, getattr(self.owner, flag) + 1)
        try:
            return func(*args, **kwargs)
        finally:
            setattr(self.owner, flag, getattr(self.owner, flag) - 1)


def _names_host(args, kwargs) -> bool:
    """Whether `Tensor.to(*args, **kwargs)` names the CPU as its device."""
    device = kwargs.get("device", args[0] if args and isinstance(args[0], (str, torch.device)) else None)
    return device is not None and torch.device(device).type == "cpu"


_ACTIVE: list[HostSyncs] = []  # the counters open now, innermost last


@contextlib.contextmanager
def host_only():
    """A block whose tensors live on the host by design, left out of every open `HostSyncs` count: use it only
    where a GPU run shows no wait (gpu_check's count), and say in a comment why the tensors are the host's."""
    paused = list(_ACTIVE)  # the counters open now; one opened inside the block counts inside it
    for counter in paused:
        counter._paused += 1
    try:
        yield
    finally:
        for counter in paused:
            counter._paused -= 1


class HostSyncs:
    """A context that counts the operations inside it that would make the host wait for a GPU (module docstring).

    `total`: how many; `kinds`: a Counter by kind; `where`: (kind, `file:line` in spatial) of each, in order."""

    def __init__(self):
        self.where: list[tuple[str, str]] = []
        self._paused = 0
        self._assigning_number = 0  # inside `x[i] = number`
        self._reading_to_host = 0  # inside a counted copy to the host
        self._modes = (_Functions(self), _Dispatch(self))

    def _record(self, kind: str) -> None:
        if not self._paused:
            self.where.append((kind, _caller()))

    @property
    def total(self) -> int:
        return len(self.where)

    @property
    def kinds(self) -> Counter:
        return Counter(kind for kind, _ in self.where)

    def report(self) -> str:
        """One line per distinct (kind, place), with its count."""
        return "\n".join(f"{n} x {kind} at {place}" for (kind, place), n in Counter(self.where).items())

    def __enter__(self) -> HostSyncs:
        for mode in self._modes:
            mode.__enter__()
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc) -> None:
        _ACTIVE.remove(self)
        for mode in reversed(self._modes):
            mode.__exit__(*exc)
