"""A deliberately plain Gaussian-splat rasterizer for tests: every pixel against every Gaussian.

Independent of spatial.render: rotations come from scipy, no tiles, no bounding boxes, one global
depth sort, and the compositing loop written the way the CUDA kernels read (front to back, skip
alpha < 1/255, stop before the transmittance would fall to 1e-4).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def reference_render(means, quats, scales, opacities, rgb, world_to_cam, K, width, height,
                     background=(0.0, 0.0, 0.0), eps2d=0.3, near=0.01, antialiased=False):
    """Float64 numpy in and out. `rgb [N, 3]` per Gaussian (already view-dependent)."""
    R_w2c, t_w2c = world_to_cam[:3, :3], world_to_cam[:3, 3]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    v, u = np.mgrid[0:height, 0:width]
    px, py = u + 0.5, v + 0.5
    gaussians = []
    for i in range(len(means)):
        Rq = Rotation.from_quat(np.roll(quats[i], -1)).as_matrix()  # scipy wants xyzw
        cov = Rq @ np.diag(scales[i] ** 2) @ Rq.T
        x, y, z = R_w2c @ means[i] + t_w2c
        if z <= near:
            continue
        lim_x = ((width - cx) / fx + 0.15 * width / fx, cx / fx + 0.15 * width / fx)
        lim_y = ((height - cy) / fy + 0.15 * height / fy, cy / fy + 0.15 * height / fy)
        tx = z * min(lim_x[0], max(-lim_x[1], x / z))
        ty = z * min(lim_y[0], max(-lim_y[1], y / z))
        J = np.array([[fx / z, 0, -fx * tx / z**2], [0, fy / z, -fy * ty / z**2]])
        cov2 = J @ R_w2c @ cov @ R_w2c.T @ J.T
        det_raw = np.linalg.det(cov2)
        cov2 = cov2 + eps2d * np.eye(2)
        if np.linalg.det(cov2) <= 0:
            continue
        opacity = opacities[i] * (np.sqrt(max(det_raw / np.linalg.det(cov2), 0)) if antialiased else 1.0)
        if opacity < 1 / 255:
            continue
        gaussians.append((z, np.array([fx * x / z + cx, fy * y / z + cy]), np.linalg.inv(cov2), opacity, rgb[i]))
    gaussians.sort(key=lambda g: g[0])

    T = np.ones((height, width))
    color = np.zeros((height, width, 3))
    depth = np.zeros((height, width))
    done = np.zeros((height, width), bool)
    for z, m, conic, opacity, c in gaussians:
        dx, dy = m[0] - px, m[1] - py
        sigma = 0.5 * (conic[0, 0] * dx * dx + conic[1, 1] * dy * dy) + conic[0, 1] * dx * dy
        alpha = np.minimum(0.999, opacity * np.exp(-sigma))
        use = (sigma >= 0) & (alpha >= 1 / 255) & ~done
        next_T = T * (1 - alpha)
        stop = use & (next_T <= 1e-4)
        done |= stop
        use &= ~stop
        w = np.where(use, alpha * T, 0)
        color += w[..., None] * c
        depth += w * z
        T = np.where(use, next_T, T)
    alpha_out = 1 - T
    color += T[..., None] * np.asarray(background)
    depth = np.where(alpha_out > 0, depth / np.maximum(alpha_out, 1e-10), 0)
    return color, alpha_out, depth
