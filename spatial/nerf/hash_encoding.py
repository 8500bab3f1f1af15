"""Multi-resolution hash encoding (Instant-NGP, Müller et al. 2022) in plain PyTorch.

Level l is a grid of resolution `R_l = floor(R_min * b^l)` over the unit cube; a point's feature at
that level is the trilinear blend of the 8 corner features of its cell. Corners are looked up in a
table of `T` rows per level: directly when the level's grid fits (`(R_l + 1)^3 <= T`), else by the
spatial hash `(x * 1) ^ (y * 2654435761) ^ (z * 805459861) mod T`.

The lookup is one autograd function: `embedding_bag` forward, a single `index_add_` backward, with
no `[N, L, 8, F]` intermediate; `tests/test_nerf.py` holds it equal, values and table gradients, to
a corner-by-corner implementation. On the CPU the same lookup runs in C with OpenMP (`hash_kernel.c`,
compiled on first use), which saves nothing for the backward pass and is held equal to this one.
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from spatial.c_kernels import compiled

PRIMES = (1, 2654435761, 805459861)


@dataclass
class HashConfig:
    levels: int = 16
    """Number of grid resolutions."""
    features_per_level: int = 2
    """Feature channels stored per table row."""
    log2_table_size: int = 19
    """Rows per level, as a power of two (the hash table size T)."""
    min_resolution: int = 16
    """Grid resolution of the coarsest level."""
    max_resolution: int = 2048
    """Grid resolution of the finest level."""


def level_resolutions(config: HashConfig) -> list[int]:
    if config.levels == 1:
        return [config.min_resolution]
    growth = math.exp((math.log(config.max_resolution) - math.log(config.min_resolution)) / (config.levels - 1))
    return [int(math.floor(config.min_resolution * growth**level)) for level in range(config.levels)]


def corner_indices(cells: Tensor, resolution: int, table_size: int) -> Tensor:
    """Table rows `[N, 8]` of the 8 corners of integer cells `[N, 3]` at one level."""
    corner = torch.arange(8, device=cells.device)  # made on the device: a tensor of host numbers would be a copy
    offsets = torch.stack([corner >> 2 & 1, corner >> 1 & 1, corner & 1], -1)  # [8, 3]
    corners = cells[:, None, :] + offsets  # [N, 8, 3]
    if (resolution + 1) ** 3 <= table_size:  # dense: every corner has its own row
        side = resolution + 1
        return corners[..., 0] + side * (corners[..., 1] + side * corners[..., 2])
    h = corners[..., 0] * PRIMES[0] ^ corners[..., 1] * PRIMES[1] ^ corners[..., 2] * PRIMES[2]
    return h & (table_size - 1)


def corner_weights(frac: Tensor) -> Tensor:
    """Trilinear weights `[N, 8]` of the corners, in `corner_indices` order, for cell offsets `[N, 3]`."""
    w = torch.stack([1 - frac, frac], -1)  # [N, 3, 2]: weight of the low and the high side per axis
    return (w[:, 0, :, None, None] * w[:, 1, None, :, None] * w[:, 2, None, None, :]).reshape(-1, 8)


def lookup_plan(x: Tensor, resolutions: list[int], table_size: int) -> tuple[Tensor, Tensor]:
    """For points `x [N, 3]` in [0, 1]: rows `[L, N, 8]` into the flat `[L * T, F]` table, and weights `[L, N, 8]`."""
    L, N = len(resolutions), x.shape[0]
    rows = torch.empty(L, N, 8, dtype=torch.int64, device=x.device)
    weights = torch.empty(L, N, 8, dtype=x.dtype, device=x.device)
    x = x.clamp(0.0, 1.0)
    for level, res in enumerate(resolutions):
        scaled = x * res
        cells = scaled.floor().clamp(max=res - 1)
        rows[level] = corner_indices(cells.long(), res, table_size) + level * table_size
        weights[level] = corner_weights(scaled - cells)
    return rows, weights


class _HashLookup(torch.autograd.Function):
    """Features `[L * N, F]` of bags of 8 table rows blended with their weights. The forward pass is
    `embedding_bag` (a fused gather and weighted sum); the backward pass is one `index_add_` into the
    table, which is much faster on the CPU than `embedding_bag`'s own (it sorts the indices)."""

    @staticmethod
    def forward(ctx, table: Tensor, rows: Tensor, weights: Tensor) -> Tensor:
        # table [L * T, F], rows [L * N, 8] int64, weights [L * N, 8]
        ctx.save_for_backward(rows, weights)
        ctx.table_shape = table.shape
        return torch.nn.functional.embedding_bag(rows, table, mode="sum", per_sample_weights=weights)

    @staticmethod
    def backward(ctx, grad: Tensor):
        rows, weights = ctx.saved_tensors
        contrib = (weights[..., None] * grad[:, None, :]).reshape(-1, grad.shape[-1])  # [L * N * 8, F]
        grad_table = torch.zeros(ctx.table_shape, dtype=grad.dtype, device=grad.device)
        grad_table.index_add_(0, rows.reshape(-1), contrib)
        return grad_table, None, None


KERNEL_SOURCE = Path(__file__).with_name("hash_kernel.c")


def hash_kernel() -> ctypes.CDLL | None:
    """The C lookup, built on first use; None where it cannot be built (the PyTorch lookup is used)."""
    lib = compiled(KERNEL_SOURCE, "the slower PyTorch hash lookup")
    if lib is not None and lib.hash_forward.argtypes is None:
        i64, i32, ptr = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
        lib.hash_forward.argtypes = [i64, i32, i32, i64, ptr, ptr, ptr, ptr, i32]
        lib.hash_backward.argtypes = [i64, i32, i32, i64, ptr, ptr, ptr, ptr, i32]
    return lib


class _HashKernel(torch.autograd.Function):
    """The lookup in C: points `x [N, 3]` in [0, 1] and the table `[L * T, F]` -> features `[N, L, F]`."""

    @staticmethod
    def forward(ctx, table: Tensor, x: Tensor, resolutions: Tensor, table_size: int) -> Tensor:
        # x [N, 3] float32, resolutions [L] int64, all on the CPU (the kernel reads host memory)
        lib = hash_kernel()
        table = table.contiguous()
        N, L, F = x.shape[0], resolutions.shape[0], table.shape[1]
        out = torch.empty(N, L, F, dtype=torch.float32, device="cpu")
        lib.hash_forward(N, L, F, table_size, resolutions.data_ptr(), x.data_ptr(), table.data_ptr(),
                         out.data_ptr(), torch.get_num_threads())
        ctx.save_for_backward(x, resolutions)
        ctx.table_shape, ctx.table_size = table.shape, table_size
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, resolutions = ctx.saved_tensors
        grad = grad.contiguous().float()
        grad_table = torch.empty(ctx.table_shape, dtype=torch.float32, device="cpu")  # every row written there
        hash_kernel().hash_backward(x.shape[0], resolutions.shape[0], ctx.table_shape[1], ctx.table_size,
                                    resolutions.data_ptr(), x.data_ptr(), grad.data_ptr(), grad_table.data_ptr(),
                                    torch.get_num_threads())
        return grad_table, None, None, None


class HashEncoding(torch.nn.Module):
    """`x [N, 3]` in the unit cube -> features `[N, levels * features_per_level]`."""

    def __init__(self, config: HashConfig):
        super().__init__()
        self.config = config
        self.resolutions = level_resolutions(config)
        # for the C lookup, which reads host memory: made once, not a tensor from host data at every step
        self._resolutions_cpu = torch.tensor(self.resolutions, dtype=torch.int64, device="cpu")
        self.table_size = 2**config.log2_table_size
        rows = config.levels * self.table_size
        self.table = torch.nn.Parameter(torch.empty(rows, config.features_per_level).uniform_(-1e-4, 1e-4))

    @property
    def out_dim(self) -> int:
        return self.config.levels * self.config.features_per_level

    def forward(self, x: Tensor, backend: Literal["auto", "torch", "c"] = "auto") -> Tensor:
        """`backend`: the C lookup (`c`), the PyTorch one (`torch`), or `auto`: C for float32 tables on the CPU where
        it builds, else PyTorch."""
        x = x.detach().float()
        if backend == "auto":
            backend = "c" if x.device.type == "cpu" and self.table.dtype == torch.float32 \
                and self.config.features_per_level <= 8 and hash_kernel() is not None else "torch"
        if backend == "c":
            return _HashKernel.apply(self.table, x.contiguous(), self._resolutions_cpu,
                                     self.table_size).reshape(x.shape[0], -1)
        rows, weights = lookup_plan(x, self.resolutions, self.table_size)
        L, N, _ = rows.shape
        # each (level, point) is a bag of 8 table rows summed with their trilinear weights
        feats = _HashLookup.apply(self.table, rows.reshape(L * N, 8), weights.reshape(L * N, 8))
        return feats.reshape(L, N, -1).permute(1, 0, 2).reshape(N, -1)
