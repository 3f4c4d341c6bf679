// Transformer kernels, neon path (AArch64 Advanced SIMD), the scheme of avx2_attn.c with
// 4-float vectors.
//
// rope: products and sums separately rounded (no fused multiply-add), so the bits are the
//   ref's. Normal layout: vld2q/vst2q split the interleaved pairs into (x0s, x1s).
// attn_f16 (head_dim a multiple of 4, else the ref): F16 keys and values converted with
//   vcvt_f32_f16; scores by 4-wide FMA dot products, scalar softmax, the weighted sum of
//   values 16 columns at a time in registers.
#include "internal.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#define INLINE static inline __attribute__((always_inline))

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

INLINE float32x4_t load_h4(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

static void rope_neon(int64_t n_heads, int64_t head_dim, int64_t n_rot, int32_t neox, const float *cs, float *x) {
    const int64_t half = n_rot / 2;
    const float *c = cs, *s = cs + half;
    for (int64_t h = 0; h < n_heads; h++) {
        float *xh = x + h * head_dim;
        int64_t i = 0;
        if (neox) {
            for (; i + 4 <= half; i += 4) {
                const float32x4_t x0 = vld1q_f32(xh + i), x1 = vld1q_f32(xh + i + half);
                const float32x4_t cv = vld1q_f32(c + i), sv = vld1q_f32(s + i);
                vst1q_f32(xh + i, vsubq_f32(vmulq_f32(x0, cv), vmulq_f32(x1, sv)));
                vst1q_f32(xh + i + half, vaddq_f32(vmulq_f32(x0, sv), vmulq_f32(x1, cv)));
            }
            for (; i < half; i++) {
                const float x0 = xh[i], x1 = xh[i + half];
                xh[i] = x0 * c[i] - x1 * s[i];
                xh[i + half] = x0 * s[i] + x1 * c[i];
            }
        } else {
            for (; i + 4 <= half; i += 4) {
                float32x4x2_t p = vld2q_f32(xh + 2 * i);
                const float32x4_t cv = vld1q_f32(c + i), sv = vld1q_f32(s + i);
                float32x4x2_t r;
                r.val[0] = vsubq_f32(vmulq_f32(p.val[0], cv), vmulq_f32(p.val[1], sv));
                r.val[1] = vaddq_f32(vmulq_f32(p.val[0], sv), vmulq_f32(p.val[1], cv));
                vst2q_f32(xh + 2 * i, r);
            }
            for (; i < half; i++) {
                const float x0 = xh[2 * i], x1 = xh[2 * i + 1];
                xh[2 * i] = x0 * c[i] - x1 * s[i];
                xh[2 * i + 1] = x0 * s[i] + x1 * c[i];
            }
        }
    }
}

INLINE float32x4_t load_f4(const float *p) { return vld1q_f32(p); }

#define ACC_TILE(NV, T, LOAD)                                                                 \
    do {                                                                                      \
        float32x4_t acc[NV];                                                                  \
        for (int u = 0; u < NV; u++) acc[u] = vdupq_n_f32(0.0f);                              \
        for (int64_t j = 0; j < n_kv; j++) {                                                  \
            const float p = s[j];                                                             \
            const T *vj = v + j * kv_stride + i0;                                             \
            for (int u = 0; u < NV; u++) acc[u] = vfmaq_n_f32(acc[u], LOAD(vj + 4 * u), p);   \
        }                                                                                     \
        for (int u = 0; u < NV; u++) vst1q_f32(out + i0 + 4 * u, vmulq_n_f32(acc[u], inv));  \
    } while (0)

#define ATTN_NEON(NAME, T, LOAD, REF)                                                                   \
    static void NAME##_row(int64_t head_dim, int64_t n_kv, const float *q, const T *k, const T *v,      \
                           int64_t kv_stride, float scale, float *s, float *out) {                      \
        float max = -INFINITY;                                                                          \
        for (int64_t j = 0; j < n_kv; j++) {                                                            \
            const T *kj = k + j * kv_stride;                                                            \
            float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f);                                 \
            int64_t i = 0;                                                                              \
            for (; i + 8 <= head_dim; i += 8) {                                                         \
                a0 = vfmaq_f32(a0, vld1q_f32(q + i), LOAD(kj + i));                                     \
                a1 = vfmaq_f32(a1, vld1q_f32(q + i + 4), LOAD(kj + i + 4));                             \
            }                                                                                           \
            for (; i < head_dim; i += 4) a0 = vfmaq_f32(a0, vld1q_f32(q + i), LOAD(kj + i));            \
            s[j] = vaddvq_f32(vaddq_f32(a0, a1)) * scale;                                               \
            if (s[j] > max) max = s[j];                                                                 \
        }                                                                                               \
        float sum = 0.0f;                                                                               \
        for (int64_t j = 0; j < n_kv; j++) {                                                            \
            s[j] = expf(s[j] - max);                                                                    \
            sum += s[j];                                                                                \
        }                                                                                               \
        const float inv = 1.0f / sum;                                                                   \
        int64_t i0 = 0;                                                                                 \
        for (; i0 + 16 <= head_dim; i0 += 16) ACC_TILE(4, T, LOAD);                                     \
        for (; i0 < head_dim; i0 += 4) ACC_TILE(1, T, LOAD);                                            \
    }                                                                                                   \
    static void NAME(int64_t n_q, int64_t head_dim, int64_t n_kv, const float *q, int64_t q_stride,     \
                     const T *k, const T *v, int64_t kv_stride, float scale, float *scores, float *out, \
                     int64_t out_stride) {                                                              \
        if (head_dim % 4 != 0) {                                                                        \
            REF(n_q, head_dim, n_kv, q, q_stride, k, v, kv_stride, scale, scores, out, out_stride);     \
            return;                                                                                     \
        }                                                                                               \
        for (int64_t h = 0; h < n_q; h++)                                                               \
            NAME##_row(head_dim, n_kv, q + h * q_stride, k, v, kv_stride, scale, scores + h * n_kv,     \
                       out + h * out_stride);                                                           \
    }

ATTN_NEON(attn_f16_neon, uint16_t, load_h4, roost_attn_f16_ref)
ATTN_NEON(attn_f32_neon, float, load_f4, roost_attn_f32_ref)

void roost_register_neon_attn(roost_kernels *k) {
    k->rope = rope_neon;
    k->attn_f16 = attn_f16_neon;
    k->attn_f32 = attn_f32_neon;
}

#else

void roost_register_neon_attn(roost_kernels *k) { (void)k; }

#endif
