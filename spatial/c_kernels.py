"""C kernels compiled on first use with the machine's C compiler, loaded through ctypes.

They need no PyTorch headers and no GPU toolkit: just `cc` with OpenMP (gcc on Linux). A build is cached by the
hash of its source, the flags and the processor in `$SPATIAL_CACHE_DIR/kernels` (else `~/.cache/spatial/kernels`).
Where no compiler is found, `compiled()` warns once and returns None, and the caller keeps its PyTorch path.

Two builds of each kernel: `native` (the default) for this processor's full instruction set (`-march=native`: AVX2,
AVX-512 where the machine has them), and `portable` for the architecture's baseline (SSE2 on x86-64), which any CPU
of the architecture runs; on x86-64 also `avx2` (x86-64-v3), the native build of a machine without AVX-512.
`SPATIAL_KERNEL_ISA` selects one, as the tests do to hold every build this machine can run to the same reference.
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

FLAGS = ["-O3", "-fPIC", "-shared", "-fopenmp", "-std=c99"]
X86 = platform.machine().lower() in ("x86_64", "amd64")
ISA_FLAGS = {  # per build: what the compiler may use
    "native": ["-march=native"],
    "portable": ["-march=x86-64", "-mtune=generic"] if X86 else [],
}
if X86:
    ISA_FLAGS["avx2"] = ["-march=x86-64-v3"]  # AVX2 and FMA without AVX-512: what most laptops run natively
_loaded: dict[tuple[Path, str], ctypes.CDLL | None] = {}


def kernel_isa() -> str:
    """The build the kernels load: `SPATIAL_KERNEL_ISA` (native, portable or avx2), native when unset."""
    isa = os.environ.get("SPATIAL_KERNEL_ISA", "native").strip().lower() or "native"
    if isa not in ISA_FLAGS:
        raise ValueError(f"SPATIAL_KERNEL_ISA={isa!r}: use one of {', '.join(ISA_FLAGS)}")
    return isa


def _cache_dir() -> Path:
    base = os.environ.get("SPATIAL_CACHE_DIR")
    return (Path(base) if base else Path.home() / ".cache" / "spatial") / "kernels"


def _processor() -> bytes:
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine().encode() + platform.processor().encode()
    return "\n".join(sorted({line for line in info if line.startswith(("model name", "flags"))})).encode()


def _compile(source: Path, target: Path, flags: list[str]) -> None:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise OSError("no C compiler found (set CC, or install gcc)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        result = subprocess.run([compiler, *flags, str(source), "-o", str(built), "-lm"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise OSError(f"compiling {source.name} failed: {result.stderr.strip()[:500]}")
        os.replace(built, target)  # atomic: concurrent first uses never load a half-written file


def compiled(source: Path, fallback: str) -> ctypes.CDLL | None:
    """The library built from the C file `source`, building it on first use; None (after one warning that ends with
    `fallback`, what is used instead) when it cannot be built here."""
    isa = kernel_isa()
    if (source, isa) in _loaded:
        return _loaded[(source, isa)]
    flags = FLAGS + ISA_FLAGS[isa]
    # -march=native builds for this processor: the key names it, so a shared cache never hands one
    # machine's build to another processor.
    key = hashlib.sha1(source.read_bytes() + " ".join(flags).encode() + _processor()).hexdigest()[:12]
    target = _cache_dir() / f"{source.stem}-{isa}-{key}.so"
    try:
        if not target.is_file():
            _compile(source, target, flags)
        lib = ctypes.CDLL(str(target))
    except OSError as e:
        warnings.warn(f"the C kernel {source.name} is unavailable ({e}); using {fallback}", stacklevel=3)
        lib = None
    _loaded[(source, isa)] = lib
    return lib
