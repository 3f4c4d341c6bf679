// RWKV WKV kernels, neon path (AArch64 Advanced SIMD), for N a multiple of 4; other N take
// the ref's per-head step (roost_wkv*_ref_head).
//
// The same scheme as avx2_wkv.c with 4-float vectors (for N = 64 a state row is sixteen
// registers), using lane-indexed multiply-adds instead of broadcasts:
// heads are independent, so the loops run head by head and, within a head, token by
// token (the head's state stays in L1 over a prefill). Every (token, head) step runs the
// same instructions whatever T is, so T tokens in one call are bitwise T single calls.
//
// wkv6: out[j] = sum_i r[i] * S_old[i][j] + v[j] * sum_i r[i] * u[i] * k[i] (the bonus
//   term factored out of the sum), S[i][j] = w[i] * S[i][j] + k[i] * v[j]; vectorized over
//   j in tiles of 8 vectors (32 columns) whose out accumulators and v stay in registers
//   over all rows i, taken four rows at a time (r, k, w of the four rows in one vector).
// wkv7: rows i four at a time: the four sa = dot(S[i], a) are accumulated in four vectors
//   and reduced together by pairwise adds, then each row is updated, stored, and dotted
//   with r; the four out sums are reduced together into out[i .. i + 3].
#include "internal.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")

// ---- helpers --------------------------------------------------------------------------

// [hsum(x0), hsum(x1), hsum(x2), hsum(x3)]
INLINE float32x4_t hsum4x4(float32x4_t x0, float32x4_t x1, float32x4_t x2, float32x4_t x3) {
    return vpaddq_f32(vpaddq_f32(x0, x1), vpaddq_f32(x2, x3));
}

// ---- wkv6 -----------------------------------------------------------------------------

// Columns j0 .. j0 + 4 * NV - 1 of one head and token.
INLINE void wkv6_tile(const int NV, const int64_t N, const int64_t j0, const float *r,
                      const float *k, const float *v, const float *w, const float32x4_t rku,
                      float *S, float *out) {
    float32x4_t acc[8], vv[8];
    UNROLL for (int c = 0; c < NV; c++) {
        acc[c] = vdupq_n_f32(0.0f);
        vv[c] = vld1q_f32(v + j0 + 4 * c);
    }
    for (int64_t i = 0; i < N; i += 4) {
        const float32x4_t r4 = vld1q_f32(r + i), k4 = vld1q_f32(k + i), w4 = vld1q_f32(w + i);
#define ROW(l)                                                                             \
    {                                                                                      \
        float *Si = S + (i + l) * N + j0;                                                  \
        UNROLL for (int c = 0; c < NV; c++) {                                              \
            const float32x4_t s = vld1q_f32(Si + 4 * c);                                   \
            acc[c] = vfmaq_laneq_f32(acc[c], s, r4, l);                                    \
            vst1q_f32(Si + 4 * c, vfmaq_laneq_f32(vmulq_laneq_f32(vv[c], k4, l), s, w4, l)); \
        }                                                                                  \
    }
        ROW(0)
        ROW(1)
        ROW(2)
        ROW(3)
#undef ROW
    }
    UNROLL for (int c = 0; c < NV; c++) vst1q_f32(out + j0 + 4 * c, vfmaq_f32(acc[c], vv[c], rku));
}

INLINE void wkv6_head(const int64_t N, const float *r, const float *k, const float *v,
                      const float *w, const float *u, float *S, float *out) {
    float32x4_t d = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < N; i += 4)
        d = vfmaq_f32(d, vmulq_f32(vld1q_f32(r + i), vld1q_f32(u + i)), vld1q_f32(k + i));
    const float32x4_t rku = vdupq_n_f32(vaddvq_f32(d));
    int64_t j0 = 0;
    for (; j0 + 32 <= N; j0 += 32) wkv6_tile(8, N, j0, r, k, v, w, rku, S, out);
    for (; j0 < N; j0 += 4) wkv6_tile(1, N, j0, r, k, v, w, rku, S, out);
}

static void wkv6_neon(int64_t T, int64_t H, int64_t N, const float *r, const float *k,
                      const float *v, const float *w, int64_t w_stride, const float *u,
                      float *state, float *out) {
    const int64_t C = H * N;
    for (int64_t h = 0; h < H; h++) {
        float *S = state + h * N * N;
        const int64_t o = h * N;
        for (int64_t t = 0; t < T; t++) {
            const float *rt = r + t * C + o, *kt = k + t * C + o, *vt = v + t * C + o;
            const float *wt = w + t * w_stride + o;
            float *ot = out + t * C + o;
            if (N == 64)
                wkv6_head(64, rt, kt, vt, wt, u + o, S, ot);
            else if (N % 4 == 0)
                wkv6_head(N, rt, kt, vt, wt, u + o, S, ot);
            else
                roost_wkv6_ref_head(N, rt, kt, vt, wt, u + o, S, ot);
        }
    }
}

// ---- wkv7 -----------------------------------------------------------------------------

// Rows i0 .. i0 + 3 of one head and token.
INLINE void wkv7_rows4(const int64_t N, const int64_t i0, const float *r, const float *w,
                       const float *k, const float *v, const float *a, const float *b,
                       float *S, float *out) {
    float *S0 = S + i0 * N, *S1 = S0 + N, *S2 = S1 + N, *S3 = S2 + N;
    float32x4_t p0 = vdupq_n_f32(0.0f), p1 = p0, p2 = p0, p3 = p0;
    UNROLL for (int64_t j = 0; j < N; j += 4) {
        const float32x4_t aj = vld1q_f32(a + j);
        p0 = vfmaq_f32(p0, vld1q_f32(S0 + j), aj);
        p1 = vfmaq_f32(p1, vld1q_f32(S1 + j), aj);
        p2 = vfmaq_f32(p2, vld1q_f32(S2 + j), aj);
        p3 = vfmaq_f32(p3, vld1q_f32(S3 + j), aj);
    }
    const float32x4_t sa = hsum4x4(p0, p1, p2, p3);
    const float32x4_t v4 = vld1q_f32(v + i0);
    float32x4_t y0 = vdupq_n_f32(0.0f), y1 = y0, y2 = y0, y3 = y0;
    UNROLL for (int64_t j = 0; j < N; j += 4) {
        const float32x4_t wj = vld1q_f32(w + j), bj = vld1q_f32(b + j);
        const float32x4_t kj = vld1q_f32(k + j), rj = vld1q_f32(r + j);
        float32x4_t s;
#define ROW(Sq, q, yq)                                                                     \
    s = vmulq_f32(vld1q_f32(Sq + j), wj);                                                  \
    s = vfmaq_laneq_f32(s, bj, sa, q);                                                     \
    s = vfmaq_laneq_f32(s, kj, v4, q);                                                     \
    vst1q_f32(Sq + j, s);                                                                  \
    yq = vfmaq_f32(yq, s, rj);
        ROW(S0, 0, y0)
        ROW(S1, 1, y1)
        ROW(S2, 2, y2)
        ROW(S3, 3, y3)
#undef ROW
    }
    vst1q_f32(out + i0, hsum4x4(y0, y1, y2, y3));
}

INLINE void wkv7_head(const int64_t N, const float *r, const float *w, const float *k,
                      const float *v, const float *a, const float *b, float *S, float *out) {
    for (int64_t i0 = 0; i0 < N; i0 += 4) wkv7_rows4(N, i0, r, w, k, v, a, b, S, out);
}

static void wkv7_neon(int64_t T, int64_t H, int64_t N, const float *r, const float *w,
                      const float *k, const float *v, const float *a, const float *b,
                      float *state, float *out) {
    const int64_t C = H * N;
    for (int64_t h = 0; h < H; h++) {
        float *S = state + h * N * N;
        const int64_t o = h * N;
        for (int64_t t = 0; t < T; t++) {
            const int64_t x = t * C + o;
            if (N == 64)
                wkv7_head(64, r + x, w + x, k + x, v + x, a + x, b + x, S, out + x);
            else if (N % 4 == 0)
                wkv7_head(N, r + x, w + x, k + x, v + x, a + x, b + x, S, out + x);
            else
                roost_wkv7_ref_head(N, r + x, w + x, k + x, v + x, a + x, b + x, S, out + x);
        }
    }
}

void roost_register_neon_wkv(roost_kernels *k) {
    k->wkv6 = wkv6_neon;
    k->wkv7 = wkv7_neon;
}

#else

void roost_register_neon_wkv(roost_kernels *k) { (void)k; }

#endif
