"""Training on several processes with torch.distributed, as `torchrun` launches them: data-parallel, one process
per GPU (or per CPU group, over gloo), on one machine or several.

Every process holds the whole model. Each renders its own views of the step, the gradients are averaged over all
of them before the optimizers step, and the statistics that densification decides from are summed over all of
them, so every process makes the same decisions from the same numbers and the parameters stay identical. That is
checked with a checksum every `CHECK_EVERY` steps; a process that drifts, or one that dies, stops the others with
a one-line error instead of a hang. Checkpoints, evaluation, progress and the live viewer belong to process 0.
Splat training splits each step's views between the processes, NeRF training each step's rays.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

import torch
from torch import Tensor

from spatial.errors import SpatialError

TIMEOUT_SECONDS = 1800
"""How long a process waits for the others at a collective before it gives up. A process that dies is noticed at
once (its connections close); this bounds one that hangs, and also how long the live viewer's Pause on process 0
may hold the others."""


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes."""

    rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        """Process 0: the one that writes checkpoints, evaluates, shows progress and serves the viewer."""
        return self.rank == 0

    def sum(self, tensor: Tensor) -> Tensor:
        """`tensor` summed over every process (in place; itself with one process)."""
        if self.world_size > 1:
            _collective(lambda: torch.distributed.all_reduce(tensor))
        return tensor

    def average_gradients(self, params) -> None:
        """Every parameter's gradient (`params`: a ParameterDict or an iterable of parameters) replaced by its mean
        over the processes, in one flat all-reduce. A parameter no process has a gradient for keeps none, as it
        would in one process (Adam then leaves it alone)."""
        if self.world_size == 1:
            return
        params = _tensors(params)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        has = torch.tensor([p.grad is not None for p in params], dtype=grads[0].dtype, device=grads[0].device)
        flat = self.sum(torch.cat([*(g.reshape(-1) for g in grads), has]))
        start = 0
        for p, g, anyone in zip(params, grads, flat[-len(params):].tolist()):
            p.grad = flat[start:start + g.numel()].view_as(g) / self.world_size if anyone else None
            start += g.numel()

    def check_identical(self, params, step: int) -> None:
        """Raise when the processes' parameters differ (a densification decision made apart, a missed sum)."""
        if self.world_size == 1:
            return
        params = _tensors(params)
        count = float(sum(p.numel() for p in params))
        total = sum(float(p.detach().double().sum()) for p in params)
        found = torch.tensor([count, total, -count, -total], dtype=torch.float64, device=params[0].device)
        _collective(lambda: torch.distributed.all_reduce(found, op=torch.distributed.ReduceOp.MAX))
        if found[0] != -found[2]:
            what = f"they hold {int(-found[2])} to {int(found[0])} parameters"
        elif found[1] != -found[3]:
            what = f"their parameters sum to {float(-found[3]):.9g} to {float(found[1]):.9g}"
        else:
            return
        raise SpatialError(f"training processes diverged at step {step}: {what}; this is a bug in spatial, please "
                           "report it")

    def barrier(self) -> None:
        if self.world_size > 1:
            _collective(torch.distributed.barrier)

    def close(self, wait: bool = True) -> None:
        """Leave the process group; with `wait`, after every process has come here (the end of training).

        The wait matters: gloo's worker threads release the last collective's tensors a moment after it completes,
        and need Python's lock to do it. Waiting at a barrier hands them the lock; a process that went straight on
        to exit would have them take it during interpreter shutdown, which aborts the process ("terminate called
        without an active exception", pytorch/pytorch#190489)."""
        if self.world_size == 1 or not torch.distributed.is_initialized():
            return
        if wait:
            self.barrier()
        torch.distributed.destroy_process_group()


ONE_PROCESS = Processes()


def _tensors(params) -> list[Tensor]:
    return list(params.values()) if hasattr(params, "values") else list(params)


_peer_lost = False  # a collective failed in this process: see `exit_process`


def exit_process(code: int) -> NoReturn:
    """Exit with `code`; after a collective failed, without the interpreter's shutdown.

    The failed collective's work can still be held by gloo's threads, and releasing it there during shutdown aborts
    the process (SIGABRT, "terminate called without an active exception", as in `Processes.close`) instead of
    exiting with `code`. The run's files are closed by then: what is left to do is flushing the output."""
    if not _peer_lost:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)


def _collective(call) -> None:
    global _peer_lost
    try:
        call()
    except (RuntimeError, torch.distributed.DistBackendError) as e:
        _peer_lost = True
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        first = re.sub(r"^\[[^\]]*\.(cc|cpp|h):\d+\]\s*", "", first)  # gloo's "[source.cc:537] " prefix
        first = first.split(". ")[0]  # its first sentence: "Read error [127.0.0.1]:8361: Connection reset by peer"
        raise SpatialError(f"another training process stopped or stopped answering ({first[:200]}); "
                           "ending this one too") from None


def processes_from_environment(device: str) -> Processes:
    """The processes `torchrun` started (its RANK, WORLD_SIZE, LOCAL_RANK and MASTER_ADDR variables), joined
    over NCCL on CUDA and gloo otherwise; one process when torchrun did not start this one."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return ONE_PROCESS
    if not torch.distributed.is_available():
        raise SpatialError("this PyTorch build has no torch.distributed: train with one process")
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))  # "cuda" is this process's own GPU
    if not torch.distributed.is_initialized():
        try:
            torch.distributed.init_process_group("nccl" if cuda else "gloo",
                                                 timeout=timedelta(seconds=TIMEOUT_SECONDS))
        except (RuntimeError, ValueError) as e:
            raise SpatialError(f"cannot join the other training processes ({str(e).splitlines()[0][:200]})") from None
    return Processes(torch.distributed.get_rank(), torch.distributed.get_world_size())
