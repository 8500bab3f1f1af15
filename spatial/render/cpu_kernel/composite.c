/* Front-to-back alpha compositing of binned 2D Gaussians on the CPU: forward and backward.
 *
 * The same arithmetic as spatial/render/torch_backend.py:composite (and gsplat's
 * rasterize_to_pixels): alpha = min(0.999, opacity * exp(-sigma)), skipped below 1/255, a pixel
 * stops before the Gaussian that would leave transmittance <= 1e-4. One OpenMP task per tile.
 *
 * Vectorised across pixels: a tile is kept as rows of L-pixel chunks, each pixel's state
 * (transmittance, sums) in arrays by chunk, and each Gaussian of the tile, in depth order, is
 * applied to the chunks it can reach (the rows and columns of its ellipse's bounding box at the
 * sigma where alpha falls below 1/255) as operations on L-float vectors (GCC's and Clang's vector
 * extensions), which the compiler lowers to the instructions the build allows: one AVX-512
 * register in the native build on a machine that has it, an AVX2 one of 8, or an SSE2 one of 4
 * (the portable build). Each pixel sees the scalar order of operations, so the images do not
 * depend on the build; each Gaussian's gradient is summed over the pixels lane by lane and then
 * across lanes, so its last bits depend on the vector width L.
 *
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
/* pixels per chunk: one vector register of the widest kind the build may use (wider vectors would be split by the
 * compiler into several, through memory where the build has no instruction for the operation) */
#if defined(__AVX512F__)
#define L 16
#elif defined(__AVX__)
#define L 8
#else
#define L 4
#endif
#define HEAD 9  /* x, y, conic a b c, opacity, sigma cut-off, half-width, half-height; then the features */
/* Every lane of a chunk evaluates exp(-sigma), also those the Gaussian does not reach, so sigma is clamped first:
 * beyond log(255) (the largest cut-off) the value is never used, and without the clamp opacity * exp(-sigma) of a
 * far pixel is a subnormal float, which the processor handles a hundred times slower than a normal one. */
#define SIGMA_CLAMP 16.0f

static inline int min_int(int a, int b) { return a < b ? a : b; }
static inline int max_int(int a, int b) { return a > b ? a : b; }

typedef float vf __attribute__((vector_size(4 * L)));   /* one chunk of floats */
typedef int32_t vi __attribute__((vector_size(4 * L))); /* one chunk of ints; comparisons give -1 or 0 */

static inline vf load(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void store(float *p, vf v) { memcpy(p, &v, sizeof v); }
static inline vi load_i(const int32_t *p) {
    vi v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void store_i(int32_t *p, vi v) { memcpy(p, &v, sizeof v); }
static inline vf splat(float x) { return (vf){0} + x; }
static inline vf select_f(vi m, vf a, vf b) { return (vf)((m & (vi)a) | (~m & (vi)b)); }
static inline vi select_i(vi m, vi a, vi b) { return (m & a) | (~m & b); }
static inline vf min_v(vf a, vf b) { return select_f(a < b, a, b); }
static inline vf max_v(vf a, vf b) { return select_f(a > b, a, b); }
static inline int any(vi m) {
    int32_t a[L];
    store_i(a, m);
    int32_t r = 0;
    for (int l = 0; l < L; l++) r |= a[l];
    return r != 0;
}
static inline int count(vi m) { /* lanes set */
    int32_t a[L];
    store_i(a, m);
    int n = 0;
    for (int l = 0; l < L; l++) n -= a[l];
    return n;
}
static inline float sum(vf v) { /* lane 0 + lane 1 + ... in order */
    float a[L];
    store(a, v);
    float s = 0.0f;
    for (int l = 0; l < L; l++) s += a[l];
    return s;
}

/* exp(-s) for s in [0, 87] (used up to SIGMA_CLAMP): round s / log(2) to the nearest integer k, exp(r) of the
 * remainder by Cephes' polynomial, times 2^k built in the exponent bits. Relative error about 1e-7 (the libm expf's
 * order), on vectors without a vector maths library. */
static inline vf exp_neg(vf s) {
    const vf x = -s;
    const vf k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* rint(x / ln 2), |x| < 2^22 */
    const vf r = (x - k * 0.693359375f) - k * -2.12194440e-4f;          /* x - k ln 2, in two parts */
    vf p = splat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const vi two_k = __builtin_convertvector(k + 127.0f, vi) << 23; /* k in [-126, 0]: a normal float */
    return p * (vf)two_k;
}

/* Copy a tile's Gaussians into one contiguous block (x, y, conic a b c, opacity, sigma cut-off, half-width,
 * half-height, features...): the tile then streams through it in order instead of chasing `gids`. The cut-off
 * log(255 opacity) is the sigma beyond which alpha < 1/255; the half-width and half-height are those of the
 * ellipse sigma = cut-off, the box outside which the Gaussian adds nothing (infinite when the conic is not
 * positive definite, so nothing is culled that the scalar rule would draw). */
static float *gather_tile(int64_t start, int64_t end, int F, const int64_t *gids, const float *means2d,
                          const float *conics, const float *opacities, const float *features) {
    const int stride = HEAD + F;
    float *buf = (float *)malloc(sizeof(float) * ((size_t)(end - start) * stride + 1));
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
        const float det = b[2] * b[4] - b[3] * b[3];
        if (b[6] < 0.0f) {
            b[7] = b[8] = -1.0f; /* reaches no pixel */
        } else if (det > 0.0f && b[2] > 0.0f) {
            b[7] = sqrtf(2.0f * b[6] * b[4] / det);
            b[8] = sqrtf(2.0f * b[6] * b[2] / det);
        } else {
            b[7] = b[8] = INFINITY;
        }
        memcpy(b + HEAD, features + F * g, sizeof(float) * F);
    }
    return buf;
}

/* The first and last index in [0, n) of the pixel centres origin + i + 0.5 within `half` of `centre`, padded by
 * one pixel for rounding (the per-pixel test decides); last < first when there are none. */
static inline void reach(float centre, float half, int origin, int n, int *first, int *last) {
    if (!(half >= 0.0f)) {
        *first = 0;
        *last = -1;
        return;
    }
    const float lo = fmaxf(centre - half - 0.5f - (float)origin - 1.0f, -1.0f);
    const float hi = fminf(centre + half - 0.5f - (float)origin + 1.0f, (float)n);
    *first = max_int((int)floorf(lo), 0);
    *last = min_int((int)ceilf(hi), n - 1);
}

void composite_forward(int64_t n_tiles, int tiles_x, int tile_size, int width, int height, int F,
                       const int64_t *offsets, const int64_t *gids, const float *means2d, const float *conics,
                       const float *opacities, const float *features, float *out, float *alpha_out,
                       float *t_final, int32_t *n_contrib, int threads) {
    const int chunks = (tile_size + L - 1) / L; /* chunks per tile row */
    const int64_t NP = (int64_t)tile_size * chunks * L;
    vf lane;
    for (int l = 0; l < L; l++) lane[l] = (float)l;
#pragma omp parallel num_threads(threads)
    {
        float *T = (float *)malloc(sizeof(float) * NP);
        float *acc = (float *)malloc(sizeof(float) * NP * F);
        int32_t *last = (int32_t *)malloc(sizeof(int32_t) * NP);
        int32_t *done = (int32_t *)malloc(sizeof(int32_t) * NP);   /* -1 once a pixel is finished (or outside) */
        int32_t *alive = (int32_t *)malloc(sizeof(int32_t) * tile_size * chunks); /* open pixels per chunk */
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < n_tiles; t++) {
            const int x0 = (int)(t % tiles_x) * tile_size, y0 = (int)(t / tiles_x) * tile_size;
            const int rows = min_int(tile_size, height - y0), cols = min_int(tile_size, width - x0);
            const int64_t start = offsets[t], count_t = offsets[t + 1] - start;
            const int stride = HEAD + F;
            int64_t open = 0;
            for (int r = 0; r < tile_size; r++) {
                for (int ch = 0; ch < chunks; ch++) {
                    const int64_t base = ((int64_t)r * chunks + ch) * L;
                    int n = 0;
                    for (int l = 0; l < L; l++) {
                        const int inside = r < rows && ch * L + l < cols;
                        T[base + l] = 1.0f;
                        last[base + l] = 0;
                        done[base + l] = inside ? 0 : -1;
                        n += inside;
                    }
                    alive[r * chunks + ch] = n;
                    open += n;
                }
            }
            memset(acc, 0, sizeof(float) * NP * F);
            float *buf = gather_tile(start, start + count_t, F, gids, means2d, conics, opacities, features);
            for (int64_t i = 0; i < count_t && open > 0; i++) {
                const float *b = buf + i * stride;
                const float mx = b[0], my = b[1], ca = b[2], cb = b[3], cc = b[4], op = b[5], cut = b[6];
                const vi number = (vi){0} + (int32_t)(i + 1);
                int r0, r1, c0, c1;
                reach(my, b[8], y0, rows, &r0, &r1);
                reach(mx, b[7], x0, cols, &c0, &c1);
                c0 /= L;
                c1 = c1 < 0 ? -1 : c1 / L;
                for (int r = r0; r <= r1; r++) {
                    const float dy = my - (float)(y0 + r) - 0.5f;
                    for (int ch = c0; ch <= c1; ch++) {
                        const int rc = r * chunks + ch;
                        if (alive[rc] == 0) continue;
                        const int64_t base = (int64_t)rc * L;
                        const vf dx = mx - ((float)(x0 + ch * L) + 0.5f + lane);
                        const vf sigma = 0.5f * (ca * dx * dx + cc * dy * dy) + cb * dx * dy;
                        const vf alpha = min_v(splat(ALPHA_MAX), op * exp_neg(min_v(max_v(sigma, splat(0.0f)),
                                                                                     splat(SIGMA_CLAMP))));
                        const vf Tq = load(T + base);
                        const vf next_T = Tq * (1.0f - alpha);
                        const vi pending = load_i(done + base);
                        const vi ok = ~pending & (sigma >= 0.0f) & (sigma <= cut) & (alpha >= ALPHA_MIN);
                        const vi stop = ok & (next_T <= T_MIN);
                        const vi use = ok & ~stop;
                        if (!any(ok)) continue;
                        const vf w = select_f(use, alpha * Tq, splat(0.0f));
                        store(T + base, select_f(use, next_T, Tq));
                        store_i(last + base, select_i(use, number, load_i(last + base)));
                        if (any(stop)) {
                            store_i(done + base, pending | stop);
                            const int stopped = count(stop);
                            alive[rc] -= stopped;
                            open -= stopped;
                        }
                        for (int j = 0; j < F; j++) store(acc + j * NP + base, load(acc + j * NP + base) + w * b[HEAD + j]);
                    }
                }
            }
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    const int64_t q = (int64_t)r * chunks * L + c, p = (int64_t)(y0 + r) * width + x0 + c;
                    for (int j = 0; j < F; j++) out[p * F + j] = acc[j * NP + q];
                    alpha_out[p] = 1.0f - T[q];
                    t_final[p] = T[q];
                    n_contrib[p] = last[q];
                }
            }
            free(buf);
        }
        free(T);
        free(acc);
        free(last);
        free(done);
        free(alive);
    }
}

void composite_backward(int64_t n_tiles, int tiles_x, int tile_size, int width, int height, int F,
                        const int64_t *offsets, const int64_t *gids, const float *means2d, const float *conics,
                        const float *opacities, const float *features, const float *t_final,
                        const int32_t *n_contrib, const float *v_out, const float *v_alpha, float *v_means2d,
                        float *v_conics, float *v_opacities, float *v_features, float *v_means2d_abs,
                        int threads) {
    const int chunks = (tile_size + L - 1) / L;
    const int64_t NP = (int64_t)tile_size * chunks * L;
    vf lane;
    for (int l = 0; l < L; l++) lane[l] = (float)l;
#pragma omp parallel num_threads(threads)
    {
        float *T = (float *)malloc(sizeof(float) * NP);           /* transmittance after the current Gaussian */
        float *suffix = (float *)malloc(sizeof(float) * NP * F);  /* sum of w_j f_j over the Gaussians behind */
        float *vo = (float *)malloc(sizeof(float) * NP * F);      /* the features' gradients, by channel */
        float *va_T = (float *)malloc(sizeof(float) * NP);        /* alpha's gradient times final transmittance */
        int32_t *ncon = (int32_t *)malloc(sizeof(int32_t) * NP);
        int32_t *deepest = (int32_t *)malloc(sizeof(int32_t) * tile_size * chunks); /* most Gaussians per chunk */
        vf g_f[MAX_F]; /* the features' gradients of the current Gaussian, by lane */
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < n_tiles; t++) {
            const int x0 = (int)(t % tiles_x) * tile_size, y0 = (int)(t / tiles_x) * tile_size;
            const int rows = min_int(tile_size, height - y0), cols = min_int(tile_size, width - x0);
            const int64_t start = offsets[t];
            const int stride = HEAD + F;
            int most = 0;
            for (int r = 0; r < tile_size; r++) {
                for (int ch = 0; ch < chunks; ch++) {
                    const int64_t base = ((int64_t)r * chunks + ch) * L;
                    int n = 0;
                    for (int l = 0; l < L; l++) {
                        const int c = ch * L + l;
                        const int64_t q = base + l;
                        if (r < rows && c < cols) {
                            const int64_t p = (int64_t)(y0 + r) * width + x0 + c;
                            T[q] = t_final[p];
                            va_T[q] = v_alpha[p] * t_final[p];
                            ncon[q] = n_contrib[p];
                            for (int j = 0; j < F; j++) vo[j * NP + q] = v_out[p * F + j];
                        } else {
                            T[q] = 1.0f;
                            va_T[q] = 0.0f;
                            ncon[q] = 0;
                            for (int j = 0; j < F; j++) vo[j * NP + q] = 0.0f;
                        }
                        n = max_int(n, ncon[q]);
                    }
                    deepest[r * chunks + ch] = n;
                    most = max_int(most, n);
                }
            }
            memset(suffix, 0, sizeof(float) * NP * F);
            float *buf = gather_tile(start, start + most, F, gids, means2d, conics, opacities, features);
            for (int64_t i = most - 1; i >= 0; i--) {
                const float *b = buf + i * stride;
                const float mx = b[0], my = b[1], ca = b[2], cb = b[3], cc = b[4], op = b[5], cut = b[6];
                const int32_t index = (int32_t)i;
                int r0, r1, c0, c1;
                reach(my, b[8], y0, rows, &r0, &r1);
                reach(mx, b[7], x0, cols, &c0, &c1);
                c0 /= L;
                c1 = c1 < 0 ? -1 : c1 / L;
                const vf zero = splat(0.0f);
                vf g_op = zero, g_a = zero, g_b = zero, g_c = zero, g_x = zero, g_y = zero, g_ax = zero, g_ay = zero;
                for (int j = 0; j < F; j++) g_f[j] = zero;
                int touched = 0;
                for (int r = r0; r <= r1; r++) {
                    const float dy = my - (float)(y0 + r) - 0.5f;
                    for (int ch = c0; ch <= c1; ch++) {
                        const int rc = r * chunks + ch;
                        if (index >= deepest[rc]) continue;
                        const int64_t base = (int64_t)rc * L;
                        const vf dx = mx - ((float)(x0 + ch * L) + 0.5f + lane);
                        const vf sigma = 0.5f * (ca * dx * dx + cc * dy * dy) + cb * dx * dy;
                        const vf G = exp_neg(min_v(max_v(sigma, zero), splat(SIGMA_CLAMP)));
                        const vf raw = op * G;
                        const vf alpha = min_v(splat(ALPHA_MAX), raw);
                        const vi use = (index < load_i(ncon + base)) & (sigma >= 0.0f) & (sigma <= cut) &
                                       (alpha >= ALPHA_MIN);
                        if (!any(use)) continue;
                        touched = 1;
                        const vf one_minus = 1.0f - alpha;
                        const vf T_after = load(T + base);
                        const vf T_before = T_after / one_minus;
                        const vf w = select_f(use, alpha * T_before, zero);
                        vf v_alpha_k = select_f(use, load(va_T + base) / one_minus, zero);
                        store(T + base, select_f(use, T_before, T_after));
                        for (int j = 0; j < F; j++) {
                            const float f = b[HEAD + j];
                            const vf v = load(vo + j * NP + base), s = load(suffix + j * NP + base);
                            g_f[j] += v * w;
                            v_alpha_k += select_f(use, v * (T_before * f - s / one_minus), zero);
                            store(suffix + j * NP + base, s + w * f);
                        }
                        const vi shaped = use & (raw <= ALPHA_MAX); /* clamped: no gradient to opacity or shape */
                        const vf v_sigma = select_f(shaped, -v_alpha_k * alpha, zero);
                        g_op += select_f(shaped, v_alpha_k * G, zero);
                        g_a += 0.5f * dx * dx * v_sigma;
                        g_b += dx * dy * v_sigma;
                        g_c += 0.5f * dy * dy * v_sigma;
                        const vf gx = (ca * dx + cb * dy) * v_sigma, gy = (cc * dy + cb * dx) * v_sigma;
                        g_x += gx;
                        g_y += gy;
                        g_ax += (vf)((vi)gx & 0x7fffffff); /* |gx| */
                        g_ay += (vf)((vi)gy & 0x7fffffff);
                    }
                }
                if (!touched) continue;
                const int64_t k = start + i;
                for (int j = 0; j < F; j++) v_features[k * F + j] = sum(g_f[j]);
                v_opacities[k] = sum(g_op);
                v_conics[3 * k] = sum(g_a);
                v_conics[3 * k + 1] = sum(g_b);
                v_conics[3 * k + 2] = sum(g_c);
                v_means2d[2 * k] = sum(g_x);
                v_means2d[2 * k + 1] = sum(g_y);
                if (v_means2d_abs) {
                    v_means2d_abs[2 * k] = sum(g_ax);
                    v_means2d_abs[2 * k + 1] = sum(g_ay);
                }
            }
            free(buf);
        }
        free(T);
        free(suffix);
        free(vo);
        free(va_T);
        free(ncon);
        free(deepest);
    }
}

/* The pixels per chunk of this build (its vector width in floats). */
int composite_lanes(void) { return L; }

/* Sum the backward pass's per-intersection gradients into their Gaussians: rows [M, width] of `v` added into rows
 * [N, width] of `out` (zeroed here) at ids[k], in intersection order (the same sums on every run and build).
 * Each of the `count` tensors is summed by its own thread. */
void sum_by_gaussian(int64_t M, int64_t N, const int64_t *ids, int count, const float **v, float **out,
                     const int *widths, int threads) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int t = 0; t < count; t++) {
        const int w = widths[t];
        const float *src = v[t];
        float *dst = out[t];
        memset(dst, 0, sizeof(float) * (size_t)N * w);
        for (int64_t k = 0; k < M; k++) {
            float *d = dst + ids[k] * w;
            const float *s = src + k * w;
            for (int j = 0; j < w; j++) d[j] += s[j];
        }
    }
}
