"""spatial/host_memory.py: a large tensor freed and allocated again (a CPU training step's gradients) is reused from
the heap, not faulted in afresh from the kernel. Counted in page faults, in fresh processes, with and without it."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROGRAM = """
import resource, sys, torch
from spatial.host_memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def faults_filling(n):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.empty(n, dtype=torch.uint8)
    t.fill_(1)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    del t
    return faults
n = 96 << 20  # above the largest mmap threshold glibc adapts to by itself (32 MiB)
print(*[faults_filling(n) for _ in range(8)])
"""


def page_faults(mode: str) -> list[int]:
    """Page faults of filling a 96 MiB tensor, eight times over, each freed before the next (a step's gradient)."""
    done = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [int(f) for f in done.stdout.split()]


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_a_freed_large_tensor_is_reused_instead_of_faulted_in_again():
    default, keep = page_faults("default"), page_faults("keep")  # counted in pages of whatever size the kernel maps
    assert min(default) > 0  # glibc's default: unmapped when freed, every tensor's pages faulted in afresh
    assert keep[0] > 0  # kept: the first is new memory too (the heap grows, its pages come in as they are touched),
    assert sum(keep[-5:]) * 10 < sum(default[-5:])  # and then the next tensors are the first one's memory


def test_keep_freed_memory_answers_the_same_each_time():
    from spatial.host_memory import keep_freed_memory

    assert keep_freed_memory() == keep_freed_memory()
    assert keep_freed_memory() == (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
