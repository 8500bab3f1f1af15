/* Front-to-back alpha compositing of binned 2D Gaussians on the CPU: forward and backward.
 *
 * The same arithmetic as spatial/render/torch_backend.py:composite (and gsplat's
 * rasterize_to_pixels): alpha = min(0.999, opacity * exp(-sigma)), skipped below 1/255, a pixel
 * stops before the Gaussian that would leave transmittance <= 1e-4. One OpenMP task per tile.
 * Gradients are written per intersection (each belongs to exactly one tile, so no two threads
 * write the same slot); the caller sums them into Gaussians. When `v_means2d_abs` is given, the
 * absolute values of each pixel's gradient to the projected centre are summed there too (AbsGS,
 * gsplat's `absgrad`).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ALPHA_MIN (1.0f / 255.0f)
#define ALPHA_MAX 0.999f
#define T_MIN 1e-4f
#define MAX_F 64

static inline int min_int(int a, int b) { return a < b ? a : b; }

/* Copy a tile's Gaussians into one contiguous block (x, y, conic a b c, opacity, sigma cut-off,
 * features...): every pixel of the tile then streams through it in order instead of chasing
 * `gids`. The cut-off log(255 opacity) is the sigma beyond which alpha < 1/255, so most
 * Gaussians of a tile are rejected at a pixel without computing an exponential. */
static float *gather_tile(int64_t start, int64_t end, int F, const int64_t *gids, const float *means2d,
                          const float *conics, const float *opacities, const float *features) {
    const int stride = 7 + F;
    float *buf = (float *)malloc(sizeof(float) * (size_t)(end - start) * stride + 1);
    for (int64_t k = start; k < end; k++) {
        const int64_t g = gids[k];
        float *b = buf + (k - start) * stride;
        b[0] = means2d[2 * g];
        b[1] = means2d[2 * g + 1];
        b[2] = conics[3 * g];
        b[3] = conics[3 * g + 1];
        b[4] = conics[3 * g + 2];
        b[5] = opacities[g];
        b[6] = b[5] > 0.0f ? logf(b[5] / ALPHA_MIN) : -1.0f;
        memcpy(b + 7, features + F * g, sizeof(float) * F);
    }
    return buf;
}

void composite_forward(int64_t n_tiles, int tiles_x, int tile_size, int width, int height, int F,
                       const int64_t *offsets, const int64_t *gids, const float *means2d, const float *conics,
                       const float *opacities, const float *features, float *out, float *alpha_out,
                       float *t_final, int32_t *n_contrib, int threads) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t t = 0; t < n_tiles; t++) {
        const int tx = (int)(t % tiles_x), ty = (int)(t / tiles_x);
        const int64_t start = offsets[t], end = offsets[t + 1], count = end - start;
        const int stride = 7 + F;
        float *buf = gather_tile(start, end, F, gids, means2d, conics, opacities, features);
        for (int py = ty * tile_size; py < min_int((ty + 1) * tile_size, height); py++) {
            for (int px = tx * tile_size; px < min_int((tx + 1) * tile_size, width); px++) {
                const float fx = px + 0.5f, fy = py + 0.5f;
                float acc[MAX_F] = {0};
                float T = 1.0f;
                int32_t last = 0;
                for (int64_t i = 0; i < count; i++) {
                    const float *b = buf + i * stride;
                    const float dx = b[0] - fx, dy = b[1] - fy;
                    const float sigma = 0.5f * (b[2] * dx * dx + b[4] * dy * dy) + b[3] * dx * dy;
                    if (sigma < 0.0f || sigma > b[6]) continue;
                    const float alpha = fminf(ALPHA_MAX, b[5] * expf(-sigma));
                    if (alpha < ALPHA_MIN) continue;
                    const float next_T = T * (1.0f - alpha);
                    if (next_T <= T_MIN) break;
                    const float w = alpha * T;
                    for (int j = 0; j < F; j++) acc[j] += w * b[7 + j];
                    T = next_T;
                    last = (int32_t)(i + 1);
                }
                const int64_t p = (int64_t)py * width + px;
                memcpy(out + p * F, acc, sizeof(float) * F);
                alpha_out[p] = 1.0f - T;
                t_final[p] = T;
                n_contrib[p] = last;
            }
        }
        free(buf);
    }
}

void composite_backward(int64_t n_tiles, int tiles_x, int tile_size, int width, int height, int F,
                        const int64_t *offsets, const int64_t *gids, const float *means2d, const float *conics,
                        const float *opacities, const float *features, const float *t_final,
                        const int32_t *n_contrib, const float *v_out, const float *v_alpha, float *v_means2d,
                        float *v_conics, float *v_opacities, float *v_features, float *v_means2d_abs,
                        int threads) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t t = 0; t < n_tiles; t++) {
        const int tx = (int)(t % tiles_x), ty = (int)(t / tiles_x);
        const int64_t start = offsets[t], end = offsets[t + 1];
        const int stride = 7 + F;
        float *buf = gather_tile(start, end, F, gids, means2d, conics, opacities, features);
        for (int py = ty * tile_size; py < min_int((ty + 1) * tile_size, height); py++) {
            for (int px = tx * tile_size; px < min_int((tx + 1) * tile_size, width); px++) {
                const int64_t p = (int64_t)py * width + px;
                const float fx = px + 0.5f, fy = py + 0.5f;
                const float T_end = t_final[p];
                const float *vo = v_out + p * F;
                const float va = v_alpha[p];
                float suffix[MAX_F] = {0}; /* sum of w_j * f_j over the Gaussians behind */
                float T = T_end;            /* transmittance after the current Gaussian */
                for (int64_t k = start + n_contrib[p] - 1; k >= start; k--) {
                    const float *b = buf + (k - start) * stride;
                    const float *c = b + 2;
                    const float dx = b[0] - fx, dy = b[1] - fy;
                    const float sigma = 0.5f * (c[0] * dx * dx + c[2] * dy * dy) + c[1] * dx * dy;
                    if (sigma < 0.0f || sigma > b[6]) continue;
                    const float G = expf(-sigma);
                    const float raw = b[5] * G;
                    const float alpha = fminf(ALPHA_MAX, raw);
                    if (alpha < ALPHA_MIN) continue;
                    const float one_minus = 1.0f - alpha;
                    const float T_before = T / one_minus;
                    const float w = alpha * T_before;
                    const float *f = b + 7;
                    float v_alpha_k = va * T_end / one_minus;
                    for (int j = 0; j < F; j++) {
                        v_features[k * F + j] += vo[j] * w;
                        v_alpha_k += vo[j] * (T_before * f[j] - suffix[j] / one_minus);
                        suffix[j] += w * f[j];
                    }
                    T = T_before;
                    if (raw > ALPHA_MAX) continue; /* clamped: no gradient to opacity or shape */
                    v_opacities[k] += v_alpha_k * G;
                    const float v_sigma = -v_alpha_k * alpha;
                    v_conics[3 * k] += 0.5f * dx * dx * v_sigma;
                    v_conics[3 * k + 1] += dx * dy * v_sigma;
                    v_conics[3 * k + 2] += 0.5f * dy * dy * v_sigma;
                    const float gx = (c[0] * dx + c[1] * dy) * v_sigma, gy = (c[2] * dy + c[1] * dx) * v_sigma;
                    v_means2d[2 * k] += gx;
                    v_means2d[2 * k + 1] += gy;
                    if (v_means2d_abs) {
                        v_means2d_abs[2 * k] += fabsf(gx);
                        v_means2d_abs[2 * k + 1] += fabsf(gy);
                    }
                }
            }
        }
        free(buf);
    }
}
