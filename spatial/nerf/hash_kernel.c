/* The multi-resolution hash encoding's lookup on the CPU: forward and backward.
 *
 * The same arithmetic as spatial/nerf/hash_encoding.py (its PyTorch path is the reference the tests hold this
 * to): a point x in [0, 1]^3 at level l of resolution R_l lies in cell floor(x R_l) (the last cell holds x = 1),
 * and its feature is the trilinear blend of the cell's 8 corner rows, looked up directly where the level's grid
 * fits in the table, else by the spatial hash x * 1 ^ y * 2654435761 ^ z * 805459861 mod T.
 *
 * forward: one OpenMP thread per block of points, writing out[N, L, F].
 * backward: one thread per level (each level owns its own T rows of the table, so no two threads ever add
 * into the same row, and no atomics are needed); the grid position is recomputed, nothing is saved.
 */
#include <math.h>
#include <stdint.h>

#define MAX_F 8

static inline void cell_of(const float *x, int64_t res, int64_t cell[3], float frac[3]) {
    for (int a = 0; a < 3; a++) {
        float v = x[a];
        v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
        const float scaled = v * (float)res;
        float c = floorf(scaled);
        if (c > (float)(res - 1)) c = (float)(res - 1);
        cell[a] = (int64_t)c;
        frac[a] = scaled - c;
    }
}

static inline int64_t corner_row(const int64_t cell[3], int corner, int64_t res, int64_t table_size) {
    const int64_t cx = cell[0] + (corner >> 2 & 1), cy = cell[1] + (corner >> 1 & 1), cz = cell[2] + (corner & 1);
    if ((res + 1) * (res + 1) * (res + 1) <= table_size) {
        const int64_t side = res + 1;
        return cx + side * (cy + side * cz);
    }
    const uint64_t h = (uint64_t)cx * 1u ^ (uint64_t)cy * 2654435761u ^ (uint64_t)cz * 805459861u;
    return (int64_t)(h & (uint64_t)(table_size - 1));
}

static inline float corner_weight(const float frac[3], int corner) {
    const float wx = (corner >> 2 & 1) ? frac[0] : 1.0f - frac[0];
    const float wy = (corner >> 1 & 1) ? frac[1] : 1.0f - frac[1];
    const float wz = (corner & 1) ? frac[2] : 1.0f - frac[2];
    return wx * wy * wz;
}

/* x [N, 3], table [L * T, F], resolutions [L] -> out [N, L, F] */
void hash_forward(int64_t N, int L, int F, int64_t table_size, const int64_t *resolutions, const float *x,
                  const float *table, float *out, int threads) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t n = 0; n < N; n++) {
        for (int l = 0; l < L; l++) {
            int64_t cell[3];
            float frac[3], acc[MAX_F] = {0};
            cell_of(x + 3 * n, resolutions[l], cell, frac);
            const float *level = table + (int64_t)l * table_size * F;
            for (int c = 0; c < 8; c++) {
                const float w = corner_weight(frac, c);
                const float *row = level + corner_row(cell, c, resolutions[l], table_size) * F;
                for (int f = 0; f < F; f++) acc[f] += w * row[f];
            }
            float *o = out + (n * L + l) * F;
            for (int f = 0; f < F; f++) o[f] = acc[f];
        }
    }
}

/* grad_out [N, L, F] -> grad_table [L * T, F] (zeroed by the caller), summed over every point's corners */
void hash_backward(int64_t N, int L, int F, int64_t table_size, const int64_t *resolutions, const float *x,
                   const float *grad_out, float *grad_table, int threads) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int l = 0; l < L; l++) {
        float *level = grad_table + (int64_t)l * table_size * F;
        for (int64_t n = 0; n < N; n++) {
            int64_t cell[3];
            float frac[3];
            cell_of(x + 3 * n, resolutions[l], cell, frac);
            const float *g = grad_out + (n * L + l) * F;
            for (int c = 0; c < 8; c++) {
                const float w = corner_weight(frac, c);
                float *row = level + corner_row(cell, c, resolutions[l], table_size) * F;
                for (int f = 0; f < F; f++) row[f] += w * g[f];
            }
        }
    }
}
