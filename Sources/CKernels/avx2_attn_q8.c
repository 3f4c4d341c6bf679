// Attention over a Q8_0 KV cache, avx2 path (AVX2 + FMA + F16C): per 32-value block the
// int8 keys are widened to four float vectors, dotted with the query by FMA and scaled by
// the block's d; values are accumulated as (p * d) * q8 into the output row.
#include "internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// int8 values qs[8 u .. 8 u + 8) as floats.
INLINE __m256 widen8(const int8_t *qs) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)qs)));
}

TARGET static void attn_q8_0_row_avx2(int64_t head_dim, int64_t n_kv, const float *q, const char *k, const char *v,
                                      int64_t kv_stride, float scale, float *s, float *out) {
    const int64_t nb = head_dim / QK8_0;
    float max = -INFINITY;
    for (int64_t j = 0; j < n_kv; j++) {
        const block_q8_0 *kb = (const block_q8_0 *)(k + j * kv_stride);
        __m256 acc = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const float *qb = q + b * QK8_0;
            __m256 p = _mm256_mul_ps(_mm256_loadu_ps(qb), widen8(kb[b].qs));
            p = _mm256_fmadd_ps(_mm256_loadu_ps(qb + 8), widen8(kb[b].qs + 8), p);
            p = _mm256_fmadd_ps(_mm256_loadu_ps(qb + 16), widen8(kb[b].qs + 16), p);
            p = _mm256_fmadd_ps(_mm256_loadu_ps(qb + 24), widen8(kb[b].qs + 24), p);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(roost_fp16_to_fp32(kb[b].d)), p, acc);
        }
        s[j] = hsum8(acc) * scale;
        if (s[j] > max) max = s[j];
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < n_kv; j++) {
        s[j] = expf(s[j] - max);
        sum += s[j];
    }
    for (int64_t i = 0; i < head_dim; i++) out[i] = 0.0f;
    for (int64_t j = 0; j < n_kv; j++) {
        const block_q8_0 *vb = (const block_q8_0 *)(v + j * kv_stride);
        for (int64_t b = 0; b < nb; b++) {
            const __m256 pd = _mm256_set1_ps(s[j] * roost_fp16_to_fp32(vb[b].d));
            float *ob = out + b * QK8_0;
            for (int u = 0; u < 4; u++)
                _mm256_storeu_ps(ob + 8 * u, _mm256_fmadd_ps(pd, widen8(vb[b].qs + 8 * u), _mm256_loadu_ps(ob + 8 * u)));
        }
    }
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (int64_t i = 0; i < head_dim; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(out + i), inv));
}

TARGET static void attn_q8_0_avx2(int64_t n_q, int64_t head_dim, int64_t n_kv, const float *q, int64_t q_stride,
                                  const void *k, const void *v, int64_t kv_stride, float scale, float *scores,
                                  float *out, int64_t out_stride) {
    for (int64_t h = 0; h < n_q; h++)
        attn_q8_0_row_avx2(head_dim, n_kv, q + h * q_stride, k, v, kv_stride, scale, scores + h * n_kv,
                           out + h * out_stride);
}

void roost_register_avx2_attn_q8(roost_kernels *k) { k->attn_q8_0 = attn_q8_0_avx2; }

#else

void roost_register_avx2_attn_q8(roost_kernels *k) { (void)k; }

#endif
