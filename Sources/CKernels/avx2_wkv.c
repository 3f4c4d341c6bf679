// RWKV WKV kernels, avx2 path (AVX2 + FMA), for N a multiple of 8; other N take the ref's
// per-head step (roost_wkv*_ref_head).
//
// Heads are independent, so the loops run head by head and, within a head, token by
// token (the head's state stays in L1 over a prefill). Every (token, head) step runs the
// same instructions whatever T is, so T tokens in one call are bitwise T single calls.
//
// wkv6: out[j] = sum_i r[i] * S_old[i][j] + v[j] * sum_i r[i] * u[i] * k[i] (the bonus
//   term factored out of the sum), S[i][j] = w[i] * S[i][j] + k[i] * v[j]; vectorized over
//   j in tiles of 4 vectors (32 columns) whose out accumulators and v stay in registers
//   over all rows i.
// wkv7: rows i four at a time: the four sa = dot(S[i], a) are accumulated in four vectors
//   and reduced together, then each row is updated, stored, and dotted with r; the four
//   out sums are reduced together into out[i .. i + 3].
#include "internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline, target("avx2,fma")))
#define UNROLL _Pragma("GCC unroll 8")

// ---- helpers --------------------------------------------------------------------------

INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// [hsum(x0), hsum(x1), hsum(x2), hsum(x3)]
INLINE __m128 hsum8x4(__m256 x0, __m256 x1, __m256 x2, __m256 x3) {
    const __m256 h01 = _mm256_hadd_ps(x0, x1); // x0 01 23, x1 01 23 | x0 45 67, x1 45 67
    const __m256 h23 = _mm256_hadd_ps(x2, x3);
    const __m256 h = _mm256_hadd_ps(h01, h23); // x0..x3 lanes 0-3 | x0..x3 lanes 4-7
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// ---- wkv6 -----------------------------------------------------------------------------

// Columns j0 .. j0 + 8 * NV - 1 of one head and token.
INLINE void wkv6_tile(const int NV, const int64_t N, const int64_t j0, const float *r,
                      const float *k, const float *v, const float *w, const __m256 rku,
                      float *S, float *out) {
    __m256 acc[4], vv[4];
    UNROLL for (int c = 0; c < NV; c++) {
        acc[c] = _mm256_setzero_ps();
        vv[c] = _mm256_loadu_ps(v + j0 + 8 * c);
    }
    for (int64_t i = 0; i < N; i++) {
        const __m256 ri = _mm256_broadcast_ss(r + i);
        const __m256 ki = _mm256_broadcast_ss(k + i);
        const __m256 wi = _mm256_broadcast_ss(w + i);
        float *Si = S + i * N + j0;
        UNROLL for (int c = 0; c < NV; c++) {
            const __m256 s = _mm256_loadu_ps(Si + 8 * c);
            acc[c] = _mm256_fmadd_ps(ri, s, acc[c]);
            _mm256_storeu_ps(Si + 8 * c, _mm256_fmadd_ps(wi, s, _mm256_mul_ps(ki, vv[c])));
        }
    }
    UNROLL for (int c = 0; c < NV; c++)
        _mm256_storeu_ps(out + j0 + 8 * c, _mm256_fmadd_ps(vv[c], rku, acc[c]));
}

INLINE void wkv6_head(const int64_t N, const float *r, const float *k, const float *v,
                      const float *w, const float *u, float *S, float *out) {
    __m256 d = _mm256_setzero_ps();
    for (int64_t i = 0; i < N; i += 8)
        d = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(r + i), _mm256_loadu_ps(u + i)),
                            _mm256_loadu_ps(k + i), d);
    const __m256 rku = _mm256_set1_ps(hsum8(d));
    int64_t j0 = 0;
    for (; j0 + 32 <= N; j0 += 32) wkv6_tile(4, N, j0, r, k, v, w, rku, S, out);
    for (; j0 < N; j0 += 8) wkv6_tile(1, N, j0, r, k, v, w, rku, S, out);
}

TARGET static void wkv6_avx2(int64_t T, int64_t H, int64_t N, const float *r, const float *k,
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
            else if (N % 8 == 0)
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
    __m256 p0 = _mm256_setzero_ps(), p1 = p0, p2 = p0, p3 = p0;
    UNROLL for (int64_t j = 0; j < N; j += 8) {
        const __m256 aj = _mm256_loadu_ps(a + j);
        p0 = _mm256_fmadd_ps(_mm256_loadu_ps(S0 + j), aj, p0);
        p1 = _mm256_fmadd_ps(_mm256_loadu_ps(S1 + j), aj, p1);
        p2 = _mm256_fmadd_ps(_mm256_loadu_ps(S2 + j), aj, p2);
        p3 = _mm256_fmadd_ps(_mm256_loadu_ps(S3 + j), aj, p3);
    }
    const __m128 sa = hsum8x4(p0, p1, p2, p3);
    const __m256 sa0 = _mm256_broadcastss_ps(sa);
    const __m256 sa1 = _mm256_broadcastss_ps(_mm_shuffle_ps(sa, sa, 0x55));
    const __m256 sa2 = _mm256_broadcastss_ps(_mm_shuffle_ps(sa, sa, 0xaa));
    const __m256 sa3 = _mm256_broadcastss_ps(_mm_shuffle_ps(sa, sa, 0xff));
    const __m256 v0 = _mm256_broadcast_ss(v + i0), v1 = _mm256_broadcast_ss(v + i0 + 1);
    const __m256 v2 = _mm256_broadcast_ss(v + i0 + 2), v3 = _mm256_broadcast_ss(v + i0 + 3);
    __m256 y0 = _mm256_setzero_ps(), y1 = y0, y2 = y0, y3 = y0;
    UNROLL for (int64_t j = 0; j < N; j += 8) {
        const __m256 wj = _mm256_loadu_ps(w + j), bj = _mm256_loadu_ps(b + j);
        const __m256 kj = _mm256_loadu_ps(k + j), rj = _mm256_loadu_ps(r + j);
        __m256 s;
#define ROW(Sq, saq, vq, yq)                                                               \
    s = _mm256_mul_ps(_mm256_loadu_ps(Sq + j), wj);                                       \
    s = _mm256_fmadd_ps(saq, bj, s);                                                      \
    s = _mm256_fmadd_ps(vq, kj, s);                                                       \
    _mm256_storeu_ps(Sq + j, s);                                                          \
    yq = _mm256_fmadd_ps(s, rj, yq);
        ROW(S0, sa0, v0, y0)
        ROW(S1, sa1, v1, y1)
        ROW(S2, sa2, v2, y2)
        ROW(S3, sa3, v3, y3)
#undef ROW
    }
    _mm_storeu_ps(out + i0, hsum8x4(y0, y1, y2, y3));
}

INLINE void wkv7_head(const int64_t N, const float *r, const float *w, const float *k,
                      const float *v, const float *a, const float *b, float *S, float *out) {
    for (int64_t i0 = 0; i0 < N; i0 += 4) wkv7_rows4(N, i0, r, w, k, v, a, b, S, out);
}

TARGET static void wkv7_avx2(int64_t T, int64_t H, int64_t N, const float *r, const float *w,
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
            else if (N % 8 == 0)
                wkv7_head(N, r + x, w + x, k + x, v + x, a + x, b + x, S, out + x);
            else
                roost_wkv7_ref_head(N, r + x, w + x, k + x, v + x, a + x, b + x, S, out + x);
        }
    }
}

void roost_register_avx2_wkv(roost_kernels *k) {
    k->wkv6 = wkv6_avx2;
    k->wkv7 = wkv7_avx2;
}

#else

void roost_register_avx2_wkv(roost_kernels *k) { (void)k; }

#endif
