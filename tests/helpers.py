"""What several test files build: random Gaussians, a camera looking at them, random splat parameters,
a small splat-training config. Fixtures are conftest.py's; plain helpers are here, imported by name."""

from __future__ import annotations

import torch

from spatial.cameras import intrinsics_from_fov, look_at, rigid_inverse


def random_gaussians(n, seed=0, dtype=torch.float32, opacity_range=(0.1, 0.95), scale=0.12):
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) - 0.5) * torch.tensor([2.0, 1.5, 1.0])
    quats = torch.randn(n, 4, generator=g)
    scales = torch.exp(torch.randn(n, 3, generator=g) * 0.5) * scale
    lo, hi = opacity_range
    opacities = lo + (hi - lo) * torch.rand(n, generator=g)
    rgb = torch.rand(n, 3, generator=g)
    return [x.to(dtype) for x in (means, quats, scales, opacities, rgb)]


def camera(width, height, dtype=torch.float32, eye=(0.3, -0.2, -3.0)):
    c2w = look_at(torch.tensor([eye], dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64),
                  torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64))
    K = intrinsics_from_fov(50, width, height)[None].double()
    K[0, 0, 2] += 1.3  # an off-centre principal point
    return rigid_inverse(c2w).to(dtype), K.to(dtype)


def random_splat_params(n=300, sh_degree=3, seed=0) -> dict[str, torch.Tensor]:
    """Raw splat parameters (see spatial.splats.model): a blob half a unit across, SH up to `sh_degree`."""
    g = torch.Generator().manual_seed(seed)
    return {
        "means": torch.randn(n, 3, generator=g) * 0.5,
        "quats": torch.randn(n, 4, generator=g),
        "scales": torch.rand(n, 3, generator=g) * 1.5 - 3.5,
        "opacities": torch.randn(n, generator=g),
        "sh0": torch.randn(n, 1, 3, generator=g) * 0.5,
        "shN": torch.randn(n, (sh_degree + 1) ** 2 - 1, 3, generator=g) * 0.3,
    }


def small_config(steps=40, strategy=None, **kw):
    """A splat-training config that densifies within a few dozen steps, without checkpoints."""
    from spatial.splats.step import StepConfig
    from spatial.splats.strategies import DefaultStrategy
    from spatial.splats.trainer import SplatTrainConfig

    strategy = strategy or DefaultStrategy(refine_start=10, refine_every=10, refine_stop=1000, reset_every=0)
    return SplatTrainConfig(step=StepConfig(steps=steps, sh_degree=1, sh_degree_interval=20), strategy=strategy,
                            checkpoint_every=0, **kw)


def appearance_config(steps=40, **kw):
    """`small_config` learning a colour transform per training photo, fast enough to move in a few dozen steps."""
    from dataclasses import replace

    from spatial.splats.appearance import AppearanceConfig

    config = small_config(steps, **kw)
    return replace(config, step=replace(config.step, appearance=AppearanceConfig(per_image=True, lr=5e-2)))


def big_world(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A world of `n` small splats (SH degree 0): half on a unit sphere coloured by direction, half on a ground
    6 units square at y = 1 (below it in OpenCV's y-down frame), coloured by position."""
    import math

    g = torch.Generator().manual_seed(seed)
    k = n // 2
    sphere = torch.nn.functional.normalize(torch.randn(k, 3, generator=g), dim=-1)
    xz = torch.rand(n - k, 2, generator=g) * 6 - 3
    ground = torch.stack([xz[:, 0], torch.ones(n - k), xz[:, 1]], -1)
    means = torch.cat([sphere, ground])
    rgb = (means * 0.4 + 0.5).clamp(0.05, 0.95)
    return {"means": means, "quats": torch.randn(n, 4, generator=g),
            "scales": torch.full((n, 3), math.log(3.0 / math.sqrt(n))),  # about as far apart as they are wide
            "opacities": torch.full((n,), 2.0), "sh0": ((rgb - 0.5) / 0.28209479)[:, None],
            "shN": torch.zeros(n, 0, 3)}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kernel_isas() -> list[str]:
    """The builds of the C kernels (`SPATIAL_KERNEL_ISA`) this machine runs: native and portable everywhere, and on
    x86-64 the AVX2 one where the CPU has x86-64-v3's instructions (on an AVX-512 machine it is not the native
    build, so the tests cover the vector width a laptop without AVX-512 runs)."""
    from spatial.c_kernels import ISA_FLAGS

    isas = ["native", "portable"]
    if "avx2" in ISA_FLAGS:
        try:
            flags = set(next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split())
        except (OSError, StopIteration):
            flags = set()
        if {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe", "xsave", "abm"} <= flags:
            isas.append("avx2")
    return isas


def nerf_loss_with(trainer, batch, step: int = 5):
    """`loss(**weights) -> float`: the NeRF step's loss on `batch` with some of `trainer`'s loss weights changed, the
    model held still (a zero-rate optimizer) and the same sample jitter every call, so two calls differ only by the
    terms whose weights differ."""
    import copy

    from spatial.nerf.step import train_step

    model, state = trainer.model, trainer.generator.get_state()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)

    def loss(**weights: float) -> float:
        trainer.generator.set_state(state)
        losses = copy.deepcopy(trainer.config.losses)
        for name, value in weights.items():
            setattr(losses, name, value)
        return train_step(model, optimizer, scheduler, batch, losses, step, trainer.generator,
                          sight=trainer.sight)["loss"].item()

    return loss
