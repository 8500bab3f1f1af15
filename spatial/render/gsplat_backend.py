"""gsplat's CUDA rasterizer behind our interface (the `cuda` extra). Imported only when used."""

from __future__ import annotations

from torch import Tensor

from spatial.render.options import RenderOptions, RenderOutput


def gsplat_available() -> bool:
    try:
        import gsplat  # noqa: F401
    except ImportError:
        return False
    return True


def rasterize_gsplat(
    means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor,
    world_to_cam: Tensor, K: Tensor, width: int, height: int, background: Tensor | None, options: RenderOptions,
) -> RenderOutput:
    """Same arguments and shapes as `rasterize_torch`."""
    from gsplat import rasterization

    colors_out, alphas, meta = rasterization(
        means, quats, scales, opacities, colors, world_to_cam, K, width, height,
        near_plane=options.near, far_plane=options.far, eps2d=options.eps2d, sh_degree=options.sh_degree,
        packed=False, tile_size=options.tile_size, backgrounds=background, render_mode="RGB+ED",
        rasterize_mode="antialiased" if options.antialiased else "classic",
    )
    radii = meta["radii"]
    if radii.dim() == 2:  # gsplat < 1.5 returned one radius per Gaussian
        radii = radii[..., None].expand(-1, -1, 2)
    return RenderOutput(colors_out[..., :3], alphas, colors_out[..., 3:4], meta["means2d"], radii.int(),
                        meta["depths"])
