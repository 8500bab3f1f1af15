/* SSIM of an image against a constant target, forward and backward, on the CPU.
 *
 * The same quantity as spatial/metrics.py:ssim (Wang et al. 2004; a Gaussian window, zero padding, the mean
 * over pixels and channels), computed as the training loss needs it: the five local moments (means of a, b,
 * a^2, b^2, ab) by a separable blur (a row pass, then a column pass: with zero padding this equals the 2D
 * window), the SSIM map from them, and in backward the three maps of derivatives blurred once more (the
 * window is symmetric, so its transpose is itself) and combined. About a tenth of the arithmetic of five 2D
 * convolutions and their backward, and no intermediate tensors.
 *
 * Images are [H, W, C] float32 (channels last, as rendered); the moments are kept by the caller between the
 * passes as [5, C, H, W]. One OpenMP task per (map, channel) plane. Each pixel's sums run over the window in
 * the same order in every build.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define C1 (0.01f * 0.01f)
#define C2 (0.03f * 0.03f)

/* out = the plane `in` [H, W] blurred by the window g[0 .. 2R] along rows then columns, zero outside; tmp is a
 * [H, W] scratch plane. */
static void blur(const float *in, float *out, float *tmp, int H, int W, const float *g, int R) {
    for (int y = 0; y < H; y++) {
        const float *src = in + (int64_t)y * W;
        float *dst = tmp + (int64_t)y * W;
        memset(dst, 0, sizeof(float) * W);
        for (int k = 0; k <= 2 * R; k++) {
            const float w = g[k];
            const int shift = k - R; /* dst[x] += w * src[x + shift] where 0 <= x + shift < W */
            const int x0 = shift < 0 ? -shift : 0, x1 = shift > 0 ? W - shift : W;
            for (int x = x0; x < x1; x++) dst[x] += w * src[x + shift];
        }
    }
    for (int y = 0; y < H; y++) {
        float *dst = out + (int64_t)y * W;
        memset(dst, 0, sizeof(float) * W);
        for (int k = 0; k <= 2 * R; k++) {
            const int yy = y + k - R;
            if (yy < 0 || yy >= H) continue;
            const float w = g[k];
            const float *src = tmp + (int64_t)yy * W;
            for (int x = 0; x < W; x++) dst[x] += w * src[x];
        }
    }
}

/* The moments `mu` [5, C, H, W] (blurred a, b, a^2, b^2, ab) of images a and b [H, W, C], and the sum of the
 * SSIM map over pixels and channels in `total` (a double, summed per plane row by row, then in plane order). */
void ssim_forward(int H, int W, int C, const float *a, const float *b, const float *g, int R, float *mu,
                  double *total, int threads) {
    const int64_t P = (int64_t)H * W;
    double *plane_sums = (double *)calloc((size_t)C, sizeof(double));
#pragma omp parallel num_threads(threads)
    {
        float *src = (float *)malloc(sizeof(float) * P);
        float *tmp = (float *)malloc(sizeof(float) * P);
#pragma omp for schedule(dynamic, 1)
        for (int task = 0; task < 5 * C; task++) {
            const int m = task / C, c = task % C;
            for (int64_t p = 0; p < P; p++) {
                const float x = a[p * C + c], y = b[p * C + c];
                src[p] = m == 0 ? x : m == 1 ? y : m == 2 ? x * x : m == 3 ? y * y : x * y;
            }
            blur(src, mu + ((int64_t)m * C + c) * P, tmp, H, W, g, R);
        }
#pragma omp for schedule(dynamic, 1)
        for (int c = 0; c < C; c++) {
            const float *ma = mu + (0 * C + c) * P, *mb = mu + (1 * C + c) * P, *aa = mu + (2 * C + c) * P,
                        *bb = mu + (3 * C + c) * P, *ab = mu + (4 * C + c) * P;
            double sum = 0.0;
            for (int y = 0; y < H; y++) {
                float row = 0.0f;
                for (int x = 0; x < W; x++) {
                    const int64_t p = (int64_t)y * W + x;
                    const float cov = ab[p] - ma[p] * mb[p];
                    const float var = (aa[p] - ma[p] * ma[p]) + (bb[p] - mb[p] * mb[p]);
                    row += ((2.0f * ma[p] * mb[p] + C1) * (2.0f * cov + C2)) /
                           ((ma[p] * ma[p] + mb[p] * mb[p] + C1) * (var + C2));
                }
                sum += row;
            }
            plane_sums[c] = sum;
        }
        free(src);
        free(tmp);
    }
    double s = 0.0;
    for (int c = 0; c < C; c++) s += plane_sums[c];
    *total = s;
    free(plane_sums);
}

/* grad_a [H, W, C] = `scale` times the gradient of the SSIM map's sum with respect to a, from the moments the
 * forward pass kept. */
void ssim_backward(int H, int W, int C, const float *a, const float *b, const float *g, int R, const float *mu,
                   float scale, float *grad_a, int threads) {
    const int64_t P = (int64_t)H * W;
    float *d = (float *)malloc(sizeof(float) * 3 * C * P); /* dS/d(mu_a), dS/d(E[a^2]), dS/d(E[ab]) per plane */
#pragma omp parallel num_threads(threads)
    {
#pragma omp for schedule(dynamic, 1)
        for (int c = 0; c < C; c++) {
            const float *ma = mu + (0 * C + c) * P, *mb = mu + (1 * C + c) * P, *aa = mu + (2 * C + c) * P,
                        *bb = mu + (3 * C + c) * P, *ab = mu + (4 * C + c) * P;
            float *d_mu = d + (0 * C + c) * P, *d_aa = d + (1 * C + c) * P, *d_ab = d + (2 * C + c) * P;
            for (int64_t p = 0; p < P; p++) {
                const float A1 = 2.0f * ma[p] * mb[p] + C1, A2 = 2.0f * (ab[p] - ma[p] * mb[p]) + C2;
                const float B1 = ma[p] * ma[p] + mb[p] * mb[p] + C1;
                const float B2 = (aa[p] - ma[p] * ma[p]) + (bb[p] - mb[p] * mb[p]) + C2;
                const float inv = scale / (B1 * B2);
                const float s = A1 * A2 / (B1 * B2);
                d_mu[p] = (2.0f * mb[p] * A2 - 2.0f * mb[p] * A1) * inv -
                          scale * s * (2.0f * ma[p] / B1 - 2.0f * ma[p] / B2);
                d_aa[p] = -scale * s / B2;
                d_ab[p] = 2.0f * A1 * inv;
            }
        }
        float *tmp = (float *)malloc(sizeof(float) * P);
        float *blurred = (float *)malloc(sizeof(float) * P);
#pragma omp for schedule(dynamic, 1)
        for (int task = 0; task < 3 * C; task++) {
            float *plane = d + (int64_t)task * P;
            blur(plane, blurred, tmp, H, W, g, R);
            memcpy(plane, blurred, sizeof(float) * P);
        }
#pragma omp for schedule(static)
        for (int64_t p = 0; p < P; p++) {
            for (int c = 0; c < C; c++) {
                const float x = a[p * C + c], y = b[p * C + c];
                grad_a[p * C + c] = d[(0 * C + c) * P + p] + 2.0f * x * d[(1 * C + c) * P + p] +
                                    y * d[(2 * C + c) * P + p];
            }
        }
        free(tmp);
        free(blurred);
    }
    free(d);
}
