"""Forty single-view training steps in a fixed order of float operations, the same on any x86-64 CPU.

    python -m tests.fixed_order SCENE OUT.pt

writes the splat parameters after 40 steps (densifying from step 11, random backgrounds, the torch rasterizer) for
the default and MCMC strategies. Run it under `FIXED_ORDER` (below): float32 sums are not associative, and by
default PyTorch picks its vector kernels by the CPU's instruction set (AVX2, AVX-512) and MKL its own code path,
so the same step rounds differently on different CPUs; forty steps with densification amplify that last-bit
difference to 1e-5 .. 2e-2 in the means (measured on one machine by switching the kernels). Under these settings
both use their baseline code and one thread, so the result is bit for bit the same on any x86-64 machine.

oneDNN is switched off as well (`torch.backends.mkldnn.enabled`): it runs the SSIM's convolutions, choosing its
kernel by the CPU's instruction set (AMX, AVX-512, ...) and cache sizes, and no environment variable pins that
choice. With it on, forty steps differed by up to 1e-3 between `ONEDNN_MAX_CPU_ISA=SSE41` and the native ISA on
one machine, and a record made on one AVX-512 machine failed on another with AMX; with it off (PyTorch's own
im2col convolution over MKL's compatible path) they are equal, as they are with glibc's FMA/AVX2 maths switched
off (`GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-FMA,-AVX512F`) and with `MKL_ENABLE_INSTRUCTIONS=AVX2`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

FIXED_ORDER = {
    "ATEN_CPU_CAPABILITY": "default",  # PyTorch's baseline kernels, not the AVX2 / AVX-512 ones
    "MKL_CBWR": "COMPATIBLE",  # MKL's conditional numerical reproducibility: one code path on every x86-64 CPU
    "OMP_NUM_THREADS": "1",  # sums split over threads are added in an order that depends on the thread count
    "MKL_NUM_THREADS": "1",
}


def forty_steps(scene: Path) -> dict[str, dict]:
    import torch

    from spatial import load_scene
    from spatial.render import RenderOptions
    from spatial.splats.strategies import MCMCStrategy
    from spatial.splats.trainer import SplatTrainer
    from tests.helpers import small_config

    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False  # oneDNN picks its convolution by the CPU (see above)
    results = {}
    for name in ("default", "mcmc"):
        strategy = MCMCStrategy(cap_max=3000, refine_start=10, refine_every=10) if name == "mcmc" else None
        config = small_config(40, strategy, random_background=True)
        config.step.render = RenderOptions(backend="torch")
        with tempfile.TemporaryDirectory() as out:
            trainer = SplatTrainer(load_scene(scene), config, Path(out))
            for _ in range(40):
                trainer.step()
        results[name] = {k: v.detach().clone() for k, v in trainer.state.params.items()}
    return results


if __name__ == "__main__":
    import torch

    torch.save(forty_steps(Path(sys.argv[1])), sys.argv[2])
