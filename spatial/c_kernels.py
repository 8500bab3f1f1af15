"""C kernels compiled on first use with the machine's C compiler, loaded through ctypes.

They need no PyTorch headers and no GPU toolkit: just `cc` with OpenMP (gcc on Linux). A build is cached by the
hash of its source, the flags and the processor in `$SPATIAL_CACHE_DIR/kernels` (else `~/.cache/spatial/kernels`).
Where no compiler is found, `compiled()` warns once and returns None, and the caller keeps its PyTorch path.
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

FLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-fopenmp", "-std=c99"]
_loaded: dict[Path, ctypes.CDLL | None] = {}


def _cache_dir() -> Path:
    base = os.environ.get("SPATIAL_CACHE_DIR")
    return (Path(base) if base else Path.home() / ".cache" / "spatial") / "kernels"


def _processor() -> bytes:
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine().encode() + platform.processor().encode()
    return "\n".join(sorted({line for line in info if line.startswith(("model name", "flags"))})).encode()


def _compile(source: Path, target: Path) -> None:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise OSError("no C compiler found (set CC, or install gcc)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        result = subprocess.run([compiler, *FLAGS, str(source), "-o", str(built), "-lm"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise OSError(f"compiling {source.name} failed: {result.stderr.strip()[:500]}")
        os.replace(built, target)  # atomic: concurrent first uses never load a half-written file


def compiled(source: Path, fallback: str) -> ctypes.CDLL | None:
    """The library built from the C file `source`, building it on first use; None (after one warning that ends with
    `fallback`, what is used instead) when it cannot be built here."""
    if source in _loaded:
        return _loaded[source]
    # -march=native builds for this processor: the key names it, so a shared cache never hands one
    # machine's build to another processor.
    key = hashlib.sha1(source.read_bytes() + " ".join(FLAGS).encode() + _processor()).hexdigest()[:12]
    target = _cache_dir() / f"{source.stem}-{key}.so"
    try:
        if not target.is_file():
            _compile(source, target)
        lib = ctypes.CDLL(str(target))
    except OSError as e:
        warnings.warn(f"the C kernel {source.name} is unavailable ({e}); using {fallback}", stacklevel=3)
        lib = None
    _loaded[source] = lib
    return lib
