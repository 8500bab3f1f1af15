"""The portable rasterizer: pure PyTorch, any device, differentiable through autograd.

Per camera: project (EWA; onto a pinhole's image, or an equirectangular panorama's with
`RenderOptions.camera_model`), bin into tiles, then composite tiles in chunks. Each chunk evaluates
only the Gaussians binned to its tiles ([tiles, pixels per tile, Gaussians per tile]), so memory
grows with the number of tile intersections, never with pixels x Gaussians.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.utils.checkpoint
from torch import Tensor

from spatial.cameras import rigid_inverse
from spatial.render.options import ALPHA_MAX, ALPHA_MIN, TRANSMITTANCE_MIN, RenderOptions, RenderOutput
from spatial.render.projection import project, project_equirect, wrapped
from spatial.render.sh import view_colors
from spatial.render.tiles import TileBins, bin_cameras

CHUNK_ELEMENTS = 1 << 22  # tiles x pixels x Gaussians evaluated at once
# log(TRANSMITTANCE_MIN) as each float type rounds it, made once here: a tensor made in the render would be a copy
# from the host, which a GPU waits for
_LOG_TRANSMITTANCE_MIN = {dtype: torch.log(torch.tensor(TRANSMITTANCE_MIN, dtype=dtype, device="cpu")).item()
                          for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)}


def rasterize_torch(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    scales: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    colors: Tensor,  # [N, K, 3] SH coefficients, or [N, 3] RGB when options.sh_degree is None
    world_to_cam: Tensor,  # [C, 4, 4]
    K: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    background: Tensor | None,  # [C, 3] or None (black)
    options: RenderOptions,
    composite_fn=None,  # the compositing step; `composite` below unless a backend brings its own
) -> RenderOutput:
    composite_fn = composite_fn or composite
    panorama = options.camera_model == "equirect"
    if panorama and options.absgrad:
        raise ValueError("absgrad is a training statistic of pinhole cameras; not available for panoramas")
    proj = (project_equirect if panorama else project)(means, quats, scales, opacities, world_to_cam, K, width, height,
                                                       options.near, options.far, options.eps2d, options.antialiased)
    # what is drawn: the Gaussians, and for a panorama copies of those that cross its seam (`source`: whose copy)
    drawn, source = wrapped(proj, 2 * math.pi * K[:, 0, 0, None], width) if panorama else (proj, None)
    cam_to_world = rigid_inverse(world_to_cam)
    rgb = view_colors(colors, means, cam_to_world, options.sh_degree)  # [C, N, 3]
    # AbsGS's statistic [C, N, 2]: filled in place by the backward pass, read as `means2d.absgrad` (gsplat's name)
    absgrad = proj.means2d.detach().new_zeros(proj.means2d.shape) if options.absgrad else None
    images, alphas, depths = [], [], []
    all_bins = bin_cameras(drawn.means2d, drawn.radii, drawn.depths, width, height, options.tile_size)
    for c, bins in enumerate(all_bins):
        colour = rgb[c] if source is None else rgb[c, source]
        features = torch.cat([colour, drawn.depths[c, :, None]], -1)  # [N, 4]: colour and depth
        out, alpha = composite_fn(bins, drawn.means2d[c], drawn.conics[c], drawn.opacities[c], features,
                                  width, height, options.tile_size, absgrad=None if absgrad is None else absgrad[c])
        color, depth = out[..., :3], out[..., 3:]
        bg = background[c] if background is not None else None
        if bg is not None:
            color = color + (1 - alpha) * bg
        images.append(color)
        alphas.append(alpha)
        depths.append(depth / alpha.clamp_min(1e-10))
    if absgrad is not None:
        proj.means2d.absgrad = absgrad
    return RenderOutput(torch.stack(images), torch.stack(alphas), torch.stack(depths),
                        proj.means2d, proj.radii, proj.depths)


def composite(
    bins: TileBins,
    means2d: Tensor,  # [N, 2]
    conics: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    features: Tensor,  # [N, F]
    width: int,
    height: int,
    tile_size: int,
    absgrad: Tensor | None = None,  # [N, 2]: backward adds each pixel's |gradient| to the centres here
) -> tuple[Tensor, Tensor]:
    """Front-to-back alpha compositing: features `[H, W, F]` and alpha `[H, W, 1]`."""
    device, dtype = means2d.device, means2d.dtype
    T = bins.tiles_x * bins.tiles_y
    P = tile_size * tile_size
    counts = bins.counts  # [T]
    # Pixel centres of every tile, [T, P, 2].
    tile, p = torch.arange(T, device=device), torch.arange(P, device=device)
    x0, y0 = (tile % bins.tiles_x) * tile_size, (tile // bins.tiles_x) * tile_size  # [T] tile corners
    px, py = x0[:, None] + p[None] % tile_size, y0[:, None] + p[None] // tile_size  # [T, P]
    pix = torch.stack([px, py], -1).to(dtype) + 0.5

    out = features.new_zeros(T, P, features.shape[-1])
    acc = features.new_zeros(T, P, 1)
    # Tiles in order of their count, similar lengths together (little padding in a chunk), the empty ones left
    # out. The host sorts its copy of the counts as the device sorts them (stably), so it plans the chunks, slices
    # of `busy`, without reading anything back.
    sizes = sorted(n for n in bins.host_counts if n > 0)
    busy = torch.argsort(counts, stable=True)[T - len(sizes):]  # [busy tiles]
    start = 0
    chunks = []
    # Group tiles into chunks whose padded [tiles, P, max count] block stays under the budget.
    while start < len(sizes):
        end, longest = start, 0
        while end < len(sizes) and ((end - start + 1) * P * max(longest, sizes[end]) <= CHUNK_ELEMENTS
                                    or end == start):
            longest = max(longest, sizes[end])
            end += 1
        chunks.append((busy[start:end], longest))
        start = end
    chunk_fn = functools.partial(_composite_chunk, absgrad=absgrad)
    needs_grad = torch.is_grad_enabled() and any(
        t.requires_grad for t in (means2d, conics, opacities, features))
    for tiles, longest in chunks:
        slot = torch.arange(longest, device=device)
        index = bins.offsets[tiles, None] + slot[None]  # [t, k]
        present = slot[None] < counts[tiles, None]
        gid = bins.gaussian_ids[torch.where(present, index, torch.zeros_like(index))]  # [t, k]
        args = (pix[tiles], present, gid, means2d, conics, opacities, features)
        if needs_grad:
            # Recompute the chunk in backward instead of keeping its [t, P, k] intermediates: memory stays at one
            # chunk whatever the number of intersections. The absgrad sink is bound, not passed: checkpoint saves
            # its tensor arguments and checks their versions on recompute, and every chunk's backward adds to it.
            chunk_out, chunk_acc = torch.utils.checkpoint.checkpoint(chunk_fn, *args, use_reentrant=False)
        else:
            chunk_out, chunk_acc = chunk_fn(*args)
        out = out.index_put((tiles,), chunk_out)
        acc = acc.index_put((tiles,), chunk_acc)
    image = _untile(out, bins, tile_size)[:height, :width]
    alpha = _untile(acc, bins, tile_size)[:height, :width]
    return image, alpha


def _composite_chunk(pix: Tensor, present: Tensor, gid: Tensor, means2d: Tensor, conics: Tensor,
                     opacities: Tensor, features: Tensor, absgrad: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Tiles `pix [t, P, 2]` against their Gaussians `gid [t, k]`: features `[t, P, F]`, alpha `[t, P, 1]`."""
    centres = means2d[gid][:, None, :, :]  # [t, 1, k, 2]
    if absgrad is not None:
        centres = _AbsGradTap.apply(centres.expand(-1, pix.shape[1], -1, -1), gid, absgrad)  # [t, P, k, 2]
    d = pix[:, :, None, :] - centres  # [t, P, k, 2]
    con = conics[gid][:, None]  # [t, 1, k, 3]
    dx, dy = d[..., 0], d[..., 1]
    sigma = 0.5 * (con[..., 0] * dx**2 + con[..., 2] * dy**2) + con[..., 1] * dx * dy
    alpha = torch.clamp_max(opacities[gid][:, None] * torch.exp(-sigma), ALPHA_MAX)  # [t, P, k]
    alpha = torch.where(present[:, None] & (sigma >= 0) & (alpha >= ALPHA_MIN), alpha, torch.zeros_like(alpha))
    log_t = torch.cumsum(torch.log1p(-alpha), dim=-1)  # log transmittance after each Gaussian
    # gsplat stops before the Gaussian that would leave less than TRANSMITTANCE_MIN.
    keep = log_t > _LOG_TRANSMITTANCE_MIN[pix.dtype]
    weight = alpha * torch.exp(log_t - torch.log1p(-alpha)) * keep  # alpha_i * T_before_i
    return torch.einsum("tpk,tkf->tpf", weight, features[gid]), weight.sum(-1, keepdim=True)


class _AbsGradTap(torch.autograd.Function):
    """Identity on the centres as each pixel sees them `[t, P, k, 2]`; its backward also adds the absolute value
    of each pixel's gradient to the Gaussian's row of `sink [N, 2]` (absent slots have zero gradient)."""

    @staticmethod
    def forward(ctx, centres: Tensor, gid: Tensor, sink: Tensor) -> Tensor:
        ctx.save_for_backward(gid)
        ctx.sink = sink
        return centres.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        (gid,) = ctx.saved_tensors
        ctx.sink.index_add_(0, gid.reshape(-1), grad.abs().sum(1).reshape(-1, 2).to(ctx.sink.dtype))
        return grad, None, None


def _untile(x: Tensor, bins: TileBins, tile_size: int) -> Tensor:
    """`[T, P, F]` per-tile pixels to an image `[tiles_y * ts, tiles_x * ts, F]`."""
    F = x.shape[-1]
    x = x.reshape(bins.tiles_y, bins.tiles_x, tile_size, tile_size, F).permute(0, 2, 1, 3, 4)
    return x.reshape(bins.tiles_y * tile_size, bins.tiles_x * tile_size, F)
