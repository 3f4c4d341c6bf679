// Attention over a Q8_0 KV cache, neon path: the scheme of avx2_attn_q8.c with 4-float
// vectors (int8 widened by vmovl to int16, int32, then converted).
#include "internal.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#define INLINE static inline __attribute__((always_inline))

// Floats of qs[0 .. 8): lo and hi halves.
INLINE void widen8(const int8_t *qs, float32x4_t *lo, float32x4_t *hi) {
    const int16x8_t w = vmovl_s8(vld1_s8(qs));
    *lo = vcvtq_f32_s32(vmovl_s16(vget_low_s16(w)));
    *hi = vcvtq_f32_s32(vmovl_s16(vget_high_s16(w)));
}

static void attn_q8_0_row_neon(int64_t head_dim, int64_t n_kv, const float *q, const char *k, const char *v,
                               int64_t kv_stride, float scale, float *s, float *out) {
    const int64_t nb = head_dim / QK8_0;
    float max = -INFINITY;
    for (int64_t j = 0; j < n_kv; j++) {
        const block_q8_0 *kb = (const block_q8_0 *)(k + j * kv_stride);
        float32x4_t acc = vdupq_n_f32(0.0f);
        for (int64_t b = 0; b < nb; b++) {
            const float *qb = q + b * QK8_0;
            float32x4_t p = vdupq_n_f32(0.0f);
            for (int u = 0; u < 4; u++) {
                float32x4_t lo, hi;
                widen8(kb[b].qs + 8 * u, &lo, &hi);
                p = vfmaq_f32(p, vld1q_f32(qb + 8 * u), lo);
                p = vfmaq_f32(p, vld1q_f32(qb + 8 * u + 4), hi);
            }
            acc = vfmaq_n_f32(acc, p, roost_fp16_to_fp32(kb[b].d));
        }
        s[j] = vaddvq_f32(acc) * scale;
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
            const float pd = s[j] * roost_fp16_to_fp32(vb[b].d);
            float *ob = out + b * QK8_0;
            for (int u = 0; u < 4; u++) {
                float32x4_t lo, hi;
                widen8(vb[b].qs + 8 * u, &lo, &hi);
                vst1q_f32(ob + 8 * u, vfmaq_n_f32(vld1q_f32(ob + 8 * u), lo, pd));
                vst1q_f32(ob + 8 * u + 4, vfmaq_n_f32(vld1q_f32(ob + 8 * u + 4), hi, pd));
            }
        }
    }
    const float inv = 1.0f / sum;
    for (int64_t i = 0; i < head_dim; i += 4) vst1q_f32(out + i, vmulq_n_f32(vld1q_f32(out + i), inv));
}

static void attn_q8_0_neon(int64_t n_q, int64_t head_dim, int64_t n_kv, const float *q, int64_t q_stride,
                           const void *k, const void *v, int64_t kv_stride, float scale, float *scores, float *out,
                           int64_t out_stride) {
    for (int64_t h = 0; h < n_q; h++)
        attn_q8_0_row_neon(head_dim, n_kv, q + h * q_stride, k, v, kv_stride, scale, scores + h * n_kv,
                           out + h * out_stride);
}

void roost_register_neon_attn_q8(roost_kernels *k) { k->attn_q8_0 = attn_q8_0_neon; }

#else

void roost_register_neon_attn_q8(roost_kernels *k) { (void)k; }

#endif
