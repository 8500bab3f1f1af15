/* The multi-resolution hash encoding's lookup on the CPU: forward and backward.
 *
 * The same arithmetic as spatial/nerf/hash_encoding.py (its PyTorch path is the reference the tests hold this
 * to): a point x in [0, 1]^3 at level l of resolution R_l lies in cell floor(x R_l) (the last cell holds x = 1),
 * and its feature is the trilinear blend of the cell's 8 corner rows, looked up directly where the level's grid
 * fits in the table, else by the spatial hash x * 1 ^ y * 2654435761 ^ z * 805459861 mod T.
 *
 * forward: level by level, each level's points split between the OpenMP threads, writing out[N, L, F].
 * backward: one thread per level (each level owns its own T rows of the table, so no two threads ever add
 * into the same row, and no atomics are needed); the grid position is recomputed, nothing is saved. Each thread
 * zeroes its level's rows first: in parallel, and just before they are added into.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define MAX_F 8

static const uint64_t PRIMES[3] = {1u, 2654435761u, 805459861u};

/* One point at one level: the cell's 8 corner rows (`corner_row`) and trilinear weights (`corner_weight`), in the
 * order corner c = (x bit c >> 2, y bit c >> 1 & 1, z bit c & 1). Each axis is worked out once: a row is the sum
 * (dense) or the xor (hashed) of one term per axis, and a weight the product of one factor per axis. */
typedef struct {
    int64_t term[3][2];  /* per axis, low and high corner: x + side (y + side z)'s terms, or x * prime per axis */
    float w[3][2];       /* per axis: 1 - frac, frac */
} Cell;

static inline void cell_of(const float *x, int64_t res, int dense, Cell *cell) {
    const int64_t side = res + 1;
    for (int a = 0; a < 3; a++) {
        float v = x[a];
        v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
        const float scaled = v * (float)res;
        float c = floorf(scaled);
        if (c > (float)(res - 1)) c = (float)(res - 1);
        const int64_t i = (int64_t)c;
        const float frac = scaled - c;
        cell->w[a][0] = 1.0f - frac;
        cell->w[a][1] = frac;
        for (int k = 0; k < 2; k++) {
            const int64_t at = i + k;
            cell->term[a][k] = dense ? at * (a == 0 ? 1 : (a == 1 ? side : side * side))
                                     : (int64_t)((uint64_t)at * PRIMES[a]);
        }
    }
}

static inline int64_t corner_row(const Cell *cell, int c, int dense, int64_t table_size) {
    const int64_t x = cell->term[0][c >> 2 & 1], y = cell->term[1][c >> 1 & 1], z = cell->term[2][c & 1];
    if (dense) return x + y + z;
    return (int64_t)(((uint64_t)x ^ (uint64_t)y ^ (uint64_t)z) & (uint64_t)(table_size - 1));
}

static inline float corner_weight(const Cell *cell, int c) {
    return cell->w[0][c >> 2 & 1] * cell->w[1][c >> 1 & 1] * cell->w[2][c & 1];
}

static inline int is_dense(int64_t res, int64_t table_size) {
    return (res + 1) * (res + 1) * (res + 1) <= table_size;
}

/* One level of the forward pass for points [begin, end). F is a compile-time constant where the caller passes
 * one (2, the features every preset stores), so the feature loops unroll. */
static inline void forward_level(int64_t begin, int64_t end, int l, int L, const int F, int64_t table_size,
                                 int64_t res, const float *x, const float *level, float *out) {
    const int dense = is_dense(res, table_size);
    for (int64_t n = begin; n < end; n++) {
        Cell cell;
        float acc[MAX_F] = {0};
        cell_of(x + 3 * n, res, dense, &cell);
        for (int c = 0; c < 8; c++) {
            const float w = corner_weight(&cell, c);
            const float *row = level + corner_row(&cell, c, dense, table_size) * F;
            for (int f = 0; f < F; f++) acc[f] += w * row[f];
        }
        float *o = out + (n * L + l) * F;
        for (int f = 0; f < F; f++) o[f] = acc[f];
    }
}

/* x [N, 3], table [L * T, F], resolutions [L] -> out [N, L, F]. Level by level: all points' lookups in one level's
 * T rows (4 MiB for 2^19 rows of 2 features) before the next level's, so that level stays in the cache, where
 * point by point the walk went through every level's rows (48 MiB for 12 levels, more than a laptop's cache). */
void hash_forward(int64_t N, int L, int F, int64_t table_size, const int64_t *resolutions, const float *x,
                  const float *table, float *out, int threads) {
#pragma omp parallel num_threads(threads)
    {
        int t = 0, T = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        T = omp_get_num_threads();
#endif
        const int64_t begin = N * t / T, end = N * (t + 1) / T;  /* each thread its share of every level */
        for (int l = 0; l < L; l++) {
            const float *level = table + (int64_t)l * table_size * F;
            if (F == 2)
                forward_level(begin, end, l, L, 2, table_size, resolutions[l], x, level, out);
            else
                forward_level(begin, end, l, L, F, table_size, resolutions[l], x, level, out);
        }
    }
}

static inline void backward_level(int64_t N, int l, int L, const int F, int64_t table_size, int64_t res,
                                  const float *x, const float *grad_out, float *level) {
    const int dense = is_dense(res, table_size);
    for (int64_t n = 0; n < N; n++) {
        Cell cell;
        cell_of(x + 3 * n, res, dense, &cell);
        const float *g = grad_out + (n * L + l) * F;
        for (int c = 0; c < 8; c++) {
            const float w = corner_weight(&cell, c);
            float *row = level + corner_row(&cell, c, dense, table_size) * F;
            for (int f = 0; f < F; f++) row[f] += w * g[f];
        }
    }
}

/* grad_out [N, L, F] -> grad_table [L * T, F] (its rows all written: zero where no point's corner is), summed over
 * every point's corners */
void hash_backward(int64_t N, int L, int F, int64_t table_size, const int64_t *resolutions, const float *x,
                   const float *grad_out, float *grad_table, int threads) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int l = 0; l < L; l++) {
        float *level = grad_table + (int64_t)l * table_size * F;
        memset(level, 0, (size_t)table_size * F * sizeof(float));
        if (F == 2)
            backward_level(N, l, L, 2, table_size, resolutions[l], x, grad_out, level);
        else
            backward_level(N, l, L, F, table_size, resolutions[l], x, grad_out, level);
    }
}
