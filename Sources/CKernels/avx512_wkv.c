// RWKV WKV kernels, avx512 path (AVX-512 F/VL/DQ + FMA), for N a multiple of 16; other N
// take the ref's per-head step (roost_wkv*_ref_head).
//
// The same scheme as avx2_wkv.c with 16-float vectors (for N = 64 a state row is four
// registers):
// heads are independent, so the loops run head by head and, within a head, token by
// token (the head's state stays in L1 over a prefill). Every (token, head) step runs the
// same instructions whatever T is, so T tokens in one call are bitwise T single calls.
//
// wkv6: out[j] = sum_i r[i] * S_old[i][j] + v[j] * sum_i r[i] * u[i] * k[i] (the bonus
//   term factored out of the sum), S[i][j] = w[i] * S[i][j] + k[i] * v[j]; vectorized over
//   j in tiles of 4 vectors (64 columns) whose out accumulators and v stay in registers
//   over all rows i.
// wkv7: rows i four at a time: the four sa = dot(S[i], a) are accumulated in four vectors
//   and reduced together, then each row is updated, stored, and dotted with r; the four
//   out sums are reduced together into out[i .. i + 3].
#include "internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma")))
#define INLINE static inline __attribute__((always_inline, target("avx512f,avx512vl,avx512dq,avx2,fma")))
#define UNROLL _Pragma("GCC unroll 8")

// ---- helpers --------------------------------------------------------------------------

INLINE float hsum16(__m512 v) {
    __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Horizontal sums of x0 .. x3: 128-bit lane q of the result holds hsum(xq) in all four
// elements.
INLINE __m512 hsum16x4(__m512 x0, __m512 x1, __m512 x2, __m512 x3) {
    // [x0 folded to 8 | x1 folded to 8], [x2 | x3]
    const __m512 t01 = _mm512_add_ps(_mm512_shuffle_f32x4(x0, x1, _MM_SHUFFLE(1, 0, 1, 0)),
                                     _mm512_shuffle_f32x4(x0, x1, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 t23 = _mm512_add_ps(_mm512_shuffle_f32x4(x2, x3, _MM_SHUFFLE(1, 0, 1, 0)),
                                     _mm512_shuffle_f32x4(x2, x3, _MM_SHUFFLE(3, 2, 3, 2)));
    // lane q: xq folded to 4
    const __m512 u = _mm512_add_ps(_mm512_shuffle_f32x4(t01, t23, _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_f32x4(t01, t23, _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512 p = _mm512_add_ps(u, _mm512_permute_ps(u, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm512_add_ps(p, _mm512_permute_ps(p, _MM_SHUFFLE(1, 0, 3, 2)));
}

// ---- wkv6 -----------------------------------------------------------------------------

// Columns j0 .. j0 + 16 * NV - 1 of one head and token.
INLINE void wkv6_tile(const int NV, const int64_t N, const int64_t j0, const float *r,
                      const float *k, const float *v, const float *w, const __m512 rku,
                      float *S, float *out) {
    __m512 acc[4], vv[4];
    UNROLL for (int c = 0; c < NV; c++) {
        acc[c] = _mm512_setzero_ps();
        vv[c] = _mm512_loadu_ps(v + j0 + 16 * c);
    }
    for (int64_t i = 0; i < N; i++) {
        const __m512 ri = _mm512_set1_ps(r[i]);
        const __m512 ki = _mm512_set1_ps(k[i]);
        const __m512 wi = _mm512_set1_ps(w[i]);
        float *Si = S + i * N + j0;
        UNROLL for (int c = 0; c < NV; c++) {
            const __m512 s = _mm512_loadu_ps(Si + 16 * c);
            acc[c] = _mm512_fmadd_ps(ri, s, acc[c]);
            _mm512_storeu_ps(Si + 16 * c, _mm512_fmadd_ps(wi, s, _mm512_mul_ps(ki, vv[c])));
        }
    }
    UNROLL for (int c = 0; c < NV; c++)
        _mm512_storeu_ps(out + j0 + 16 * c, _mm512_fmadd_ps(vv[c], rku, acc[c]));
}

INLINE void wkv6_head(const int64_t N, const float *r, const float *k, const float *v,
                      const float *w, const float *u, float *S, float *out) {
    __m512 d = _mm512_setzero_ps();
    for (int64_t i = 0; i < N; i += 16)
        d = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_loadu_ps(r + i), _mm512_loadu_ps(u + i)),
                            _mm512_loadu_ps(k + i), d);
    const __m512 rku = _mm512_set1_ps(hsum16(d));
    int64_t j0 = 0;
    for (; j0 + 64 <= N; j0 += 64) wkv6_tile(4, N, j0, r, k, v, w, rku, S, out);
    for (; j0 < N; j0 += 16) wkv6_tile(1, N, j0, r, k, v, w, rku, S, out);
}

TARGET static void wkv6_avx512(int64_t T, int64_t H, int64_t N, const float *r, const float *k,
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
            else if (N % 16 == 0)
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
    __m512 p0 = _mm512_setzero_ps(), p1 = p0, p2 = p0, p3 = p0;
    UNROLL for (int64_t j = 0; j < N; j += 16) {
        const __m512 aj = _mm512_loadu_ps(a + j);
        p0 = _mm512_fmadd_ps(_mm512_loadu_ps(S0 + j), aj, p0);
        p1 = _mm512_fmadd_ps(_mm512_loadu_ps(S1 + j), aj, p1);
        p2 = _mm512_fmadd_ps(_mm512_loadu_ps(S2 + j), aj, p2);
        p3 = _mm512_fmadd_ps(_mm512_loadu_ps(S3 + j), aj, p3);
    }
    const __m512 sa = hsum16x4(p0, p1, p2, p3);
    const __m512 sa0 = _mm512_shuffle_f32x4(sa, sa, 0x00);
    const __m512 sa1 = _mm512_shuffle_f32x4(sa, sa, 0x55);
    const __m512 sa2 = _mm512_shuffle_f32x4(sa, sa, 0xaa);
    const __m512 sa3 = _mm512_shuffle_f32x4(sa, sa, 0xff);
    const __m512 v0 = _mm512_set1_ps(v[i0]), v1 = _mm512_set1_ps(v[i0 + 1]);
    const __m512 v2 = _mm512_set1_ps(v[i0 + 2]), v3 = _mm512_set1_ps(v[i0 + 3]);
    __m512 y0 = _mm512_setzero_ps(), y1 = y0, y2 = y0, y3 = y0;
    UNROLL for (int64_t j = 0; j < N; j += 16) {
        const __m512 wj = _mm512_loadu_ps(w + j), bj = _mm512_loadu_ps(b + j);
        const __m512 kj = _mm512_loadu_ps(k + j), rj = _mm512_loadu_ps(r + j);
        __m512 s;
#define ROW(Sq, saq, vq, yq)                                                               \
    s = _mm512_mul_ps(_mm512_loadu_ps(Sq + j), wj);                                       \
    s = _mm512_fmadd_ps(saq, bj, s);                                                      \
    s = _mm512_fmadd_ps(vq, kj, s);                                                       \
    _mm512_storeu_ps(Sq + j, s);                                                          \
    yq = _mm512_fmadd_ps(s, rj, yq);
        ROW(S0, sa0, v0, y0)
        ROW(S1, sa1, v1, y1)
        ROW(S2, sa2, v2, y2)
        ROW(S3, sa3, v3, y3)
#undef ROW
    }
    // element 0 of each 128-bit lane
    const __m512i first = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512 y = _mm512_permutexvar_ps(first, hsum16x4(y0, y1, y2, y3));
    _mm_storeu_ps(out + i0, _mm512_castps512_ps128(y));
}

INLINE void wkv7_head(const int64_t N, const float *r, const float *w, const float *k,
                      const float *v, const float *a, const float *b, float *S, float *out) {
    for (int64_t i0 = 0; i0 < N; i0 += 4) wkv7_rows4(N, i0, r, w, k, v, a, b, S, out);
}

TARGET static void wkv7_avx512(int64_t T, int64_t H, int64_t N, const float *r, const float *w,
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
            else if (N % 16 == 0)
                wkv7_head(N, r + x, w + x, k + x, v + x, a + x, b + x, S, out + x);
            else
                roost_wkv7_ref_head(N, r + x, w + x, k + x, v + x, a + x, b + x, S, out + x);
        }
    }
}

void roost_register_avx512_wkv(roost_kernels *k) {
    k->wkv6 = wkv6_avx512;
    k->wkv7 = wkv7_avx512;
}

#else

void roost_register_avx512_wkv(roost_kernels *k) { (void)k; }

#endif
