"""The compositing step in C with OpenMP, compiled on first use with the machine's C compiler.

Loaded through ctypes, so it needs no PyTorch headers and no GPU toolkit: just `cc` with OpenMP
(gcc on Linux). The build is cached by source hash in `$SPATIAL_CACHE_DIR/kernels` (else
`~/.cache/spatial/kernels`). When no compiler is found, `load()` returns None and the renderer
falls back to the pure-PyTorch path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

SOURCE = Path(__file__).with_name("composite.c")
FLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-fopenmp", "-std=c99"]
_lib: ctypes.CDLL | None = None
_tried = False


def _cache_dir() -> Path:
    base = os.environ.get("SPATIAL_CACHE_DIR")
    return (Path(base) if base else Path.home() / ".cache" / "spatial") / "kernels"


def _processor() -> bytes:
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine().encode() + platform.processor().encode()
    return "\n".join(sorted({line for line in info if line.startswith(("model name", "flags"))})).encode()


def _compile(target: Path) -> None:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise OSError("no C compiler found (set CC, or install gcc)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        result = subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", str(built), "-lm"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise OSError(f"compiling {SOURCE.name} failed: {result.stderr.strip()[:500]}")
        os.replace(built, target)  # atomic: concurrent first uses never load a half-written file


def load() -> ctypes.CDLL | None:
    """The compiled kernel, building it on first use; None when it cannot be built here."""
    global _lib, _tried
    if _tried:
        return _lib
    _tried = True
    # -march=native builds for this processor: the key names it, so a shared cache never hands one
    # machine's build to another processor.
    key = hashlib.sha1(SOURCE.read_bytes() + " ".join(FLAGS).encode() + _processor()).hexdigest()[:12]
    target = _cache_dir() / f"composite-{key}.so"
    try:
        if not target.is_file():
            _compile(target)
        lib = ctypes.CDLL(str(target))
    except OSError as e:
        warnings.warn(f"the CPU splat kernel is unavailable ({e}); using the slower pure-PyTorch rasterizer",
                      stacklevel=2)
        return None
    i64, i32, ptr = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
    lib.composite_forward.argtypes = [i64, i32, i32, i32, i32, i32] + [ptr] * 10 + [i32]
    lib.composite_backward.argtypes = [i64, i32, i32, i32, i32, i32] + [ptr] * 15 + [i32]
    _lib = lib
    return lib
