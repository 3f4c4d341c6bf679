// Transformer kernels, avx2 path (AVX2 + FMA + F16C).
//
// rope: 8 floats at a time; products and sums separately rounded (no FMA), so the bits
//   are the ref's. Normal layout: the pairs (x[2i], x[2i+1]) are interleaved in a vector;
//   cos/sin are duplicated into both lanes of a pair and _mm256_addsub_ps gives
//   x0*c - x1*s in even lanes and x1*c + x0*s in odd lanes. NeoX: the two halves are two
//   plain vectors. Tails take scalar code with the same roundings.
// attn_f16 / attn_f32 (head_dim a multiple of 8, else the ref): per query row, scores by
//   8-wide FMA dot products against the keys (F16 converted with F16C), a scalar softmax (expf,
//   sums in index order), then the weighted sum of values with the output in registers,
//   32 columns at a time.
#include "internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

// Scalar steps must not be contracted into FMAs either (they must match the ref).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE __m256 load_h8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

TARGET static void rope_avx2(int64_t n_heads, int64_t head_dim, int64_t n_rot, int32_t neox, const float *cs,
                             float *x) {
    const int64_t half = n_rot / 2;
    const float *c = cs, *s = cs + half;
    const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    for (int64_t h = 0; h < n_heads; h++) {
        float *xh = x + h * head_dim;
        int64_t i = 0;
        if (neox) {
            for (; i + 8 <= half; i += 8) {
                const __m256 x0 = _mm256_loadu_ps(xh + i), x1 = _mm256_loadu_ps(xh + i + half);
                const __m256 cv = _mm256_loadu_ps(c + i), sv = _mm256_loadu_ps(s + i);
                _mm256_storeu_ps(xh + i, _mm256_sub_ps(_mm256_mul_ps(x0, cv), _mm256_mul_ps(x1, sv)));
                _mm256_storeu_ps(xh + i + half, _mm256_add_ps(_mm256_mul_ps(x0, sv), _mm256_mul_ps(x1, cv)));
            }
            for (; i < half; i++) {
                const float x0 = xh[i], x1 = xh[i + half];
                xh[i] = x0 * c[i] - x1 * s[i];
                xh[i + half] = x0 * s[i] + x1 * c[i];
            }
        } else {
            for (; i + 4 <= half; i += 4) {
                const __m256 xv = _mm256_loadu_ps(xh + 2 * i);
                const __m256 cv = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(c + i)), dup);
                const __m256 sv = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(s + i)), dup);
                const __m256 xs = _mm256_permute_ps(xv, 0xB1); // (x1, x0) in each pair
                _mm256_storeu_ps(xh + 2 * i, _mm256_addsub_ps(_mm256_mul_ps(xv, cv), _mm256_mul_ps(xs, sv)));
            }
            for (; i < half; i++) {
                const float x0 = xh[2 * i], x1 = xh[2 * i + 1];
                xh[2 * i] = x0 * c[i] - x1 * s[i];
                xh[2 * i + 1] = x0 * s[i] + x1 * c[i];
            }
        }
    }
}

INLINE __m256 load_f8(const float *p) { return _mm256_loadu_ps(p); }

// out[i0 .. i0 + 8 * NV) = sum_j p_j v_j[i0 ..] for NV vectors of columns.
#define ACC_TILE(NV, T, LOAD)                                                                \
    do {                                                                                     \
        __m256 acc[NV];                                                                      \
        for (int u = 0; u < NV; u++) acc[u] = _mm256_setzero_ps();                           \
        for (int64_t j = 0; j < n_kv; j++) {                                                 \
            const __m256 p = _mm256_set1_ps(s[j]);                                           \
            const T *vj = v + j * kv_stride + i0;                                            \
            for (int u = 0; u < NV; u++) acc[u] = _mm256_fmadd_ps(p, LOAD(vj + 8 * u), acc[u]); \
        }                                                                                    \
        for (int u = 0; u < NV; u++) _mm256_storeu_ps(out + i0 + 8 * u, _mm256_mul_ps(acc[u], inv)); \
    } while (0)

// The row kernel and the entry point for a cache of element type T read 8 at a time by LOAD.
#define ATTN_AVX2(NAME, T, LOAD, REF)                                                                   \
    TARGET static void NAME##_row(int64_t head_dim, int64_t n_kv, const float *q, const T *k, const T *v, \
                                  int64_t kv_stride, float scale, float *s, float *out) {               \
        float max = -INFINITY;                                                                          \
        for (int64_t j = 0; j < n_kv; j++) {                                                            \
            const T *kj = k + j * kv_stride;                                                            \
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                                  \
            int64_t i = 0;                                                                              \
            for (; i + 16 <= head_dim; i += 16) {                                                       \
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), LOAD(kj + i), a0);                         \
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), LOAD(kj + i + 8), a1);                 \
            }                                                                                           \
            for (; i < head_dim; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), LOAD(kj + i), a0); \
            s[j] = hsum8(_mm256_add_ps(a0, a1)) * scale;                                                \
            if (s[j] > max) max = s[j];                                                                 \
        }                                                                                               \
        float sum = 0.0f;                                                                               \
        for (int64_t j = 0; j < n_kv; j++) {                                                            \
            s[j] = expf(s[j] - max);                                                                    \
            sum += s[j];                                                                                \
        }                                                                                               \
        const __m256 inv = _mm256_set1_ps(1.0f / sum);                                                  \
        int64_t i0 = 0;                                                                                 \
        for (; i0 + 32 <= head_dim; i0 += 32) ACC_TILE(4, T, LOAD);                                     \
        for (; i0 < head_dim; i0 += 8) ACC_TILE(1, T, LOAD);                                            \
    }                                                                                                   \
    TARGET static void NAME(int64_t n_q, int64_t head_dim, int64_t n_kv, const float *q, int64_t q_stride, \
                            const T *k, const T *v, int64_t kv_stride, float scale, float *scores,      \
                            float *out, int64_t out_stride) {                                           \
        if (head_dim % 8 != 0) {                                                                        \
            REF(n_q, head_dim, n_kv, q, q_stride, k, v, kv_stride, scale, scores, out, out_stride);     \
            return;                                                                                     \
        }                                                                                               \
        for (int64_t h = 0; h < n_q; h++)                                                               \
            NAME##_row(head_dim, n_kv, q + h * q_stride, k, v, kv_stride, scale, scores + h * n_kv,     \
                       out + h * out_stride);                                                           \
    }

ATTN_AVX2(attn_f16_avx2, uint16_t, load_h8, roost_attn_f16_ref)
ATTN_AVX2(attn_f32_avx2, float, load_f8, roost_attn_f32_ref)

void roost_register_avx2_attn(roost_kernels *k) {
    k->rope = rope_avx2;
    k->attn_f16 = attn_f16_avx2;
    k->attn_f32 = attn_f32_avx2;
}

#else

void roost_register_avx2_attn(roost_kernels *k) { (void)k; }

#endif
