"""Keeping the CPU training step's large tensors in the process between steps (glibc's allocator).

A training step on the CPU allocates and frees the same tensors of tens of megabytes each time: a hash grid's
gradient is 48 MiB for the NeRF's video preset (12 levels of 2^19 rows). glibc serves an allocation above its mmap
threshold (which adapts, but never above 32 MiB on 64-bit machines) with a fresh `mmap` and gives it back to the
kernel when it is freed, so every step faults those pages in again, zeroed once by the kernel and again by torch.
On 2 cores the video preset's NeRF step on the phone-style facade video took 108 ms with glibc's defaults and 91 ms
with this (steps 300 to 400, each way in its own process). Raising the mmap threshold and the trim threshold keeps
freed memory in the heap for the next step: the process's memory stays near its peak instead of falling back between
steps, a peak the run reaches at every step anyway.

Process-wide (malloc's settings are): `TrainerBase` calls `keep_freed_memory()` for a run on the CPU. Elsewhere
(another C library, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
THRESHOLD = 1 << 30  # allocations of up to 1 GiB from the heap; free space at its top up to 1 GiB kept
_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks of up to 1 GiB for reuse instead of unmapping them. Returns whether
    it is in effect (False where the C library is not glibc). Once per process; later calls return the first's
    answer."""
    global _applied
    if _applied is None:
        _applied = False
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):
                return False
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            # mmap first: setting it fixes the threshold (no more adapting), then the trim threshold above it
            _applied = bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, THRESHOLD))
    return _applied
