// Reference transformer kernels: RoPE and attention over an F16 KV cache (see
// roost_kernels.h for the formulas). Plain float32 loops in index order.
#include "internal.h"

// Every product and sum is rounded separately: the SIMD RoPE gives these bits.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

// x: [n_heads][head_dim], cs: [2][n_rot / 2] (cos, then sin)
static void rope_ref(int64_t n_heads, int64_t head_dim, int64_t n_rot, int32_t neox, const float *cs,
                     float *x) {
    const int64_t half = n_rot / 2;
    const float *c = cs, *s = cs + half;
    for (int64_t h = 0; h < n_heads; h++) {
        float *xh = x + h * head_dim;
        if (neox) {
            for (int64_t i = 0; i < half; i++) {
                const float x0 = xh[i], x1 = xh[i + half];
                xh[i] = x0 * c[i] - x1 * s[i];
                xh[i + half] = x0 * s[i] + x1 * c[i];
            }
        } else {
            for (int64_t i = 0; i < half; i++) {
                const float x0 = xh[2 * i], x1 = xh[2 * i + 1];
                xh[2 * i] = x0 * c[i] - x1 * s[i];
                xh[2 * i + 1] = x0 * s[i] + x1 * c[i];
            }
        }
    }
}

static inline float load_f16(const uint16_t *p) { return roost_fp16_to_fp32(*p); }
static inline float load_f32(const float *p) { return *p; }

// One query row: q [head_dim] against n_kv cached positions -> out [head_dim], for a cache
// of element type T read by LOAD.
#define ATTN_REF(NAME, T, LOAD)                                                                         \
    static void NAME##_row(int64_t head_dim, int64_t n_kv, const float *q, const T *k, const T *v,      \
                           int64_t kv_stride, float scale, float *s, float *out) {                      \
        float max = -INFINITY;                                                                          \
        for (int64_t j = 0; j < n_kv; j++) {                                                            \
            const T *kj = k + j * kv_stride;                                                            \
            float dot = 0.0f;                                                                           \
            for (int64_t i = 0; i < head_dim; i++) dot += q[i] * LOAD(kj + i);                          \
            s[j] = dot * scale;                                                                         \
            if (s[j] > max) max = s[j];                                                                 \
        }                                                                                               \
        float sum = 0.0f;                                                                               \
        for (int64_t j = 0; j < n_kv; j++) {                                                            \
            s[j] = expf(s[j] - max);                                                                    \
            sum += s[j];                                                                                \
        }                                                                                               \
        for (int64_t i = 0; i < head_dim; i++) out[i] = 0.0f;                                           \
        for (int64_t j = 0; j < n_kv; j++) {                                                            \
            const T *vj = v + j * kv_stride;                                                            \
            const float p = s[j];                                                                       \
            for (int64_t i = 0; i < head_dim; i++) out[i] += p * LOAD(vj + i);                          \
        }                                                                                               \
        const float inv = 1.0f / sum;                                                                   \
        for (int64_t i = 0; i < head_dim; i++) out[i] *= inv;                                           \
    }                                                                                                   \
    void NAME(int64_t n_q, int64_t head_dim, int64_t n_kv, const float *q, int64_t q_stride, const T *k, \
              const T *v, int64_t kv_stride, float scale, float *scores, float *out, int64_t out_stride) { \
        for (int64_t h = 0; h < n_q; h++)                                                               \
            NAME##_row(head_dim, n_kv, q + h * q_stride, k, v, kv_stride, scale, scores + h * n_kv,     \
                       out + h * out_stride);                                                           \
    }

ATTN_REF(roost_attn_f16_ref, uint16_t, load_f16)
ATTN_REF(roost_attn_f32_ref, float, load_f32)

void roost_register_ref_attn(roost_kernels *k) {
    k->rope = rope_ref;
    k->attn_f16 = roost_attn_f16_ref;
    k->attn_f32 = roost_attn_f32_ref;
    k->attn_q8_0 = roost_attn_q8_0_ref;
}
